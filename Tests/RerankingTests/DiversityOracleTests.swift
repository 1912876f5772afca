import Glibc
import Reranking
import Testing

/// The fast diversifiers (SIMD, incremental Cholesky, Givens window updates) against slow,
/// obviously-correct reimplementations in Double that recompute everything at every step.
@Suite struct DiversityOracleTests {
    /// Normalised vectors and min–max normalised relevance of a catalogue, in Double.
    struct Plain {
        var vectors: [[Double]]
        var relevance: [Double]
        var rows: [Int32]

        init(_ c: CandidateSet) {
            let d = c.dimension
            vectors = (0..<c.count).map { i in (0..<d).map { Double(c.vectors[i * d + $0]) } }
            let low = Double(c.relevance.min()!)
            let high = Double(c.relevance.max()!)
            relevance = c.relevance.map { (Double($0) - low) / (high - low) }
            rows = c.rows
        }

        func cosine(_ a: Int, _ b: Int) -> Double { zip(vectors[a], vectors[b]).map { $0 * $1 }.reduce(0, +) }

        /// Picks the argmax of `score` among unchosen items each step (ties: lower row).
        func greedy(k: Int, score: (_ i: Int, _ chosen: [Int]) -> Double) -> [Int32] {
            var chosen: [Int] = []
            while chosen.count < k {
                var best = -1
                var bestScore = -Double.infinity
                for i in rows.indices where !chosen.contains(i) {
                    let s = score(i, chosen)
                    if s > bestScore || (s == bestScore && rows[i] < rows[best]) { (best, bestScore) = (i, s) }
                }
                chosen.append(best)
            }
            return chosen.map { rows[$0] }
        }

        /// d²ᵢ = S_ii − s_Wᵢᵀ S_W⁻¹ s_Wᵢ with the jittered cosine kernel, by Gaussian elimination.
        func residual(_ i: Int, given w: [Int], jitter: Double) -> Double {
            let m = w.count
            guard m > 0 else { return 1 + jitter }
            var a = (0..<m).map { r in (0..<m).map { c in cosine(w[r], w[c]) + (r == c ? jitter : 0) } }
            var b = w.map { cosine($0, i) }
            for col in 0..<m {
                for r in (col + 1)..<m {
                    let f = a[r][col] / a[col][col]
                    for c in col..<m { a[r][c] -= f * a[col][c] }
                    b[r] -= f * b[col]
                }
            }
            var x = [Double](repeating: 0, count: m)
            for r in stride(from: m - 1, through: 0, by: -1) {
                var s = b[r]
                for c in (r + 1)..<m { s -= a[r][c] * x[c] }
                x[r] = s / a[r][r]
            }
            return 1 + jitter - zip(w.map { cosine($0, i) }, x).map { $0 * $1 }.reduce(0, +)
        }
    }

    @Test(arguments: [UInt64(1), 2, 3, 4])
    func mmrMatchesNaiveGreedy(seed: UInt64) throws {
        let candidates = RerankFixtures.catalogue(seed: seed, count: 70, dimension: 12, pinOnly: 0, clustered: true)
        let plain = Plain(candidates)
        let lambda = 0.6
        let expected = plain.greedy(k: 15) { i, chosen in
            let penalty = chosen.isEmpty ? 0 : chosen.map { plain.cosine(i, $0) }.max()!
            return lambda * plain.relevance[i] - (1 - lambda) * penalty
        }
        let scratch = Reranker()
        try scratch.rerank(candidates, RerankRequest(k: 15, method: .mmr(lambda: Float(lambda))))
        #expect(scratch.ranked.map(\.row) == expected)
    }

    @Test(arguments: [(UInt64(1), Int?.none), (2, nil), (3, 4), (4, 3), (5, 1)])
    func dppMatchesNaiveLogDeterminantGreedy(seed: UInt64, window: Int?) throws {
        // k > dimension exercises the jitter; the window exercises the Givens downdate.
        let candidates = RerankFixtures.catalogue(seed: seed, count: 60, dimension: 8, pinOnly: 0, clustered: true)
        let plain = Plain(candidates)
        let theta = 0.6
        let jitter = 1e-3
        let expected = plain.greedy(k: 12) { i, chosen in
            let conditioning = window.map { Array(chosen.suffix($0)) } ?? chosen
            let r = max(plain.residual(i, given: conditioning, jitter: jitter), 1e-6)
            return theta * plain.relevance[i] + (1 - theta) * log(r) - (r < 3 * jitter ? 1000 : 0)
        }
        let scratch = Reranker()
        try scratch.rerank(candidates, RerankRequest(k: 12, method: .dpp(theta: Float(theta), window: window)))
        #expect(scratch.ranked.map(\.row) == expected)
    }
}

import Glibc
import TestSupport
import VectorIndex

/// Seeded vectors and helpers shared by the VectorIndex tests.
enum Fixtures {
    /// Clustered rows with norms varying ~7× (log-normal), like matrix-factorisation item embeddings.
    static func clusteredRows(count: Int, dimension: Int, clusters: Int = 20, seed: UInt64) -> [[Float]] {
        var rng = SeededGenerator(seed: seed)
        let centers = (0..<clusters).map { _ in (0..<dimension).map { _ in rng.nextGaussian() } }
        return (0..<count).map { _ in
            let center = centers[Int(rng.next() % UInt64(clusters))]
            let scale = Float(_exp(Double(0.5 * rng.nextGaussian())))
            return center.map { ($0 + 0.5 * rng.nextGaussian()) * scale }
        }
    }

    /// Queries drawn like user vectors: near cluster centres, unit-ish norm.
    static func queries(count: Int, dimension: Int, seed: UInt64) -> [[Float]] {
        clusteredRows(count: count, dimension: dimension, seed: seed ^ 0xABCD).map { row in row.map { $0 * 0.7 } }
    }

    /// Encodes rows into one contiguous buffer of `type`.
    static func encode(_ rows: [[Float]], as type: VectorElementType) -> [UInt8] {
        let dimension = rows.first?.count ?? 1
        let stride = VectorCodec.rowStride(dimension: dimension, type: type)
        var bytes = [UInt8](repeating: 0, count: stride * rows.count)
        bytes.withUnsafeMutableBytes { raw in
            for (i, row) in rows.enumerated() {
                row.withUnsafeBufferPointer { source in
                    VectorCodec.encode(
                        source, as: type,
                        into: UnsafeMutableRawBufferPointer(rebasing: raw[(i * stride)..<((i + 1) * stride)]))
                }
            }
        }
        return bytes
    }

    /// Exact top-k rows by score (Double accumulation), best first; the oracle the tests compare against.
    static func oracle(
        _ rows: [[Float]], query: [Float], metric: Metric, k: Int, accepts: (Int) -> Bool = { _ in true }
    )
        -> [Int]
    {
        let scored = rows.indices.filter(accepts).map { ($0, referenceScore(query, rows[$0], metric)) }
        return scored.sorted { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }.prefix(k).map(\.0)
    }

    /// Scalar reference similarity (higher is better) in Double.
    static func referenceScore(_ q: [Float], _ x: [Float], _ metric: Metric) -> Double {
        var dot = 0.0, qq = 0.0, xx = 0.0, l2 = 0.0
        for i in q.indices {
            dot += Double(q[i]) * Double(x[i])
            qq += Double(q[i]) * Double(q[i])
            xx += Double(x[i]) * Double(x[i])
            l2 += (Double(q[i]) - Double(x[i])) * (Double(q[i]) - Double(x[i]))
        }
        switch metric {
        case .ip: return dot
        case .cosine: return xx > 0 && qq > 0 ? dot / (qq.squareRoot() * xx.squareRoot()) : 0
        case .l2: return -l2
        }
    }

    /// Fraction of `expected` rows found in `found`.
    static func recall(_ found: [SearchResult], _ expected: [Int]) -> Double {
        guard !expected.isEmpty else { return 1 }
        let got = Set(found.map { Int($0.row) })
        return Double(expected.filter(got.contains).count) / Double(expected.count)
    }
}

/// Owns encoded rows and a built graph, and exposes an `HNSWIndex` over them (valid while the fixture lives).
final class IndexFixture: @unchecked Sendable {  // immutable after init
    let rows: [[Float]]
    let metric: Metric
    let vectorBytes: UnsafeMutableRawBufferPointer
    let graphBytes: UnsafeMutableRawBufferPointer
    let index: HNSWIndex
    let payload: [UInt8]

    init(
        rows: [[Float]], metric: Metric, type: VectorElementType = .f32,
        parameters: HNSWParameters = HNSWParameters(m: 12, efConstruction: 60), threads: Int = 2
    ) throws {
        self.rows = rows
        self.metric = metric
        let encoded = Fixtures.encode(rows, as: type)
        vectorBytes = .allocate(byteCount: max(encoded.count, 1), alignment: 64)
        vectorBytes.copyBytes(from: encoded)
        let matrix = try VectorMatrix(
            bytes: UnsafeRawBufferPointer(vectorBytes), count: rows.count,
            dimension: rows[0].count, type: type)
        payload = HNSWIndexBuilder.build(
            vectors: matrix, metric: metric, parameters: parameters, threads: threads,
            progress: nil)
        graphBytes = .allocate(byteCount: payload.count, alignment: 64)
        graphBytes.copyBytes(from: payload)
        let graph = try HNSWGraph(bytes: UnsafeRawBufferPointer(graphBytes), rowCount: rows.count)
        index = try HNSWIndex(vectors: matrix, graph: graph)
    }

    deinit {
        vectorBytes.deallocate()
        graphBytes.deallocate()
    }
}

private func _exp(_ x: Double) -> Double { Glibc.exp(x) }

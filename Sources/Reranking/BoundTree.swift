/// A winner (tournament) tree over the candidates' score upper bounds, for the lazy greedy
/// steps of MMR and the full DPP: the root is the candidate with the highest bound, and lowering
/// one candidate's bound (after re-scoring it, or to retire it) costs O(log n).
///
/// A step pops the root, re-scores it, and either takes it (its exact score still matches its
/// bound, so nothing else can beat it) or lowers its bound and looks at the new root. That visits
/// only the candidates whose bound could win, instead of walking the whole relevance order.
///
/// Ties follow the scan's order exactly: higher bound, then lower row, then higher normalised
/// relevance, then lower candidate index. Retired candidates have the bound −∞.
///
/// Layout: `winner` holds `2 · leafCount` nodes, node 1 is the root and node `leafCount + i`
/// the leaf of candidate `i` (−1 for padding). A view over `RerankScratch`'s buffers.
struct BoundTree {
    let winner: UnsafeMutablePointer<Int32>
    /// Current upper bound of each candidate's score.
    let bound: UnsafeMutablePointer<Float>
    private let rows: UnsafeMutablePointer<Int32>
    private let normalized: UnsafeMutablePointer<Float>
    private(set) var leafCount = 1

    init(
        winner: UnsafeMutablePointer<Int32>, bound: UnsafeMutablePointer<Float>, rows: UnsafeMutablePointer<Int32>,
        normalized: UnsafeMutablePointer<Float>
    ) {
        self.winner = winner
        self.bound = bound
        self.rows = rows
        self.normalized = normalized
    }

    /// Leaves needed for `count` candidates (the `winner` buffer needs twice as many nodes).
    static func leaves(for count: Int) -> Int {
        var size = 1
        while size < count { size <<= 1 }
        return size
    }

    /// Whether candidate `a` ranks before candidate `b` (−1 = empty, ranks last).
    @inline(__always)
    private func beats(_ a: Int32, _ b: Int32) -> Bool {
        if b < 0 { return a >= 0 }
        if a < 0 { return false }
        let (i, j) = (Int(a), Int(b))
        let (x, y) = (bound[i], bound[j])
        if x != y { return x > y }
        if rows[i] != rows[j] { return rows[i] < rows[j] }
        // The relevance order's key: non-negative relevance descending, then index.
        let (p, q) = (max(normalized[i], 0), max(normalized[j], 0))
        if p != q { return p > q }
        return a < b
    }

    /// Rebuilds the tree over candidates `0 ..< count` from `bound`. O(count).
    mutating func build(count: Int) {
        leafCount = Self.leaves(for: count)
        for leaf in 0..<leafCount {
            winner[leafCount + leaf] = leaf < count ? Int32(truncatingIfNeeded: leaf) : -1
        }
        var node = leafCount - 1
        while node >= 1 {
            let (left, right) = (winner[2 * node], winner[2 * node + 1])
            winner[node] = beats(right, left) ? right : left
            node -= 1
        }
    }

    /// The candidate with the highest bound, or nil when every one is retired.
    @inline(__always)
    var top: Int? {
        let w = winner[1]
        return w >= 0 && bound[Int(w)] > -.infinity ? Int(w) : nil
    }

    /// Sets candidate `i`'s bound and replays its matches up to the root. O(log n).
    @inline(__always)
    func setBound(_ i: Int, _ value: Float) {
        bound[i] = value
        var node = (leafCount + i) >> 1
        while node >= 1 {
            let (left, right) = (winner[2 * node], winner[2 * node + 1])
            winner[node] = beats(right, left) ? right : left
            node >>= 1
        }
    }
}

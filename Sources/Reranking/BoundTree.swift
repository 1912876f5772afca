/// A winner (tournament) tree over the candidates' score upper bounds, for the lazy greedy
/// steps of MMR and the full DPP: the root is the candidate with the highest bound, and changing
/// one candidate's bound (after re-scoring it, or to retire it) costs O(log n).
///
/// A step pops the root, re-scores it, and either takes it (its exact score still matches its
/// bound, so nothing else can beat it) or lowers its bound and looks at the new root. That visits
/// only the candidates whose bound could win, instead of walking the whole relevance order.
///
/// Each node stores its winner's 64-bit key — the bound's bits made order-preserving, then the
/// row inverted so that among equal bounds the lower row wins, as in the scan — next to its
/// candidate index. Replaying a leaf's matches then compares keys already in the nodes: no
/// pointer chasing, no data-dependent branches (an earlier version that compared bounds through
/// the candidate indices spent most of a step waiting on those loads and mispredictions).
/// Rows must be distinct (`SelectionState` scans instead when a row is supplied twice).
/// Retired candidates have the bound −∞.
///
/// Layout: `keys` and `winners` hold `2 · leafCount` nodes, node 1 is the root and node
/// `leafCount + i` the leaf of candidate `i` (key 0 and winner −1 for padding). A view over
/// `Reranker`'s buffers.
struct BoundTree {
    private let keys: UnsafeMutablePointer<UInt64>
    private let winners: UnsafeMutablePointer<Int32>
    /// Current upper bound of each candidate's score.
    let bound: UnsafeMutablePointer<Float>
    private let rows: UnsafeMutablePointer<Int32>
    private(set) var leafCount = 1

    init(
        keys: UnsafeMutablePointer<UInt64>, winners: UnsafeMutablePointer<Int32>, bound: UnsafeMutablePointer<Float>,
        rows: UnsafeMutablePointer<Int32>
    ) {
        self.keys = keys
        self.winners = winners
        self.bound = bound
        self.rows = rows
    }

    /// Leaves needed for `count` candidates (the node buffers need twice as many).
    static func leaves(for count: Int) -> Int {
        var size = 1
        while size < count { size <<= 1 }
        return size
    }

    /// Larger key = ranks first: higher bound, then lower row.
    @inline(__always)
    private func key(_ i: Int) -> UInt64 {
        let bits = bound[i].bitPattern
        // IEEE order as unsigned order: flip all bits of negatives, the sign bit of positives.
        let ordered = bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
        let row = UInt32(bitPattern: rows[i]) ^ 0x8000_0000
        return UInt64(ordered) << 32 | UInt64(~row)
    }

    /// Rebuilds the tree over candidates `0 ..< count` from `bound`. O(count).
    mutating func build(count: Int) {
        leafCount = Self.leaves(for: count)
        for leaf in 0..<leafCount {
            let node = leafCount + leaf
            if leaf < count {
                keys[node] = key(leaf)
                winners[node] = Int32(truncatingIfNeeded: leaf)
            } else {
                keys[node] = 0
                winners[node] = -1
            }
        }
        var node = leafCount - 1
        while node >= 1 {
            let right = keys[2 * node + 1] > keys[2 * node]
            keys[node] = right ? keys[2 * node + 1] : keys[2 * node]
            winners[node] = right ? winners[2 * node + 1] : winners[2 * node]
            node -= 1
        }
    }

    /// The candidate with the highest bound, or nil when every one is retired.
    @inline(__always)
    var top: Int? {
        let w = winners[1]
        return w >= 0 && bound[Int(w)] > -.infinity ? Int(w) : nil
    }

    /// Sets candidate `i`'s bound and replays its matches up to the root. O(log n).
    @inline(__always)
    func setBound(_ i: Int, _ value: Float) {
        bound[i] = value
        var node = leafCount + i
        var best = key(i)
        var winner = Int32(truncatingIfNeeded: i)
        keys[node] = best
        winners[node] = winner
        // The path's winner stays in registers; only the sibling's node is read at each level.
        while node > 1 {
            let sibling = node ^ 1
            let other = keys[sibling]
            let otherWins = other > best
            best = otherWins ? other : best
            winner = otherWins ? winners[sibling] : winner
            node >>= 1
            keys[node] = best
            winners[node] = winner
        }
    }
}

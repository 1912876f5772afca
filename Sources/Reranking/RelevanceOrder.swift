/// The candidates in decreasing relevance, produced lazily, with the ones that can no longer
/// be placed unlinked so later steps do not walk over them again.
///
/// A selection step scans candidates in relevance order and usually stops long before the end,
/// so the order is not sorted up front: the sort keys are heapified (O(n)) and popped one at a
/// time when a scan reaches the end of the sorted prefix (O(log n) each). The prefix is a singly
/// linked list (`next`) so a scan can drop placed, excluded and capped candidates in O(1); the
/// list always ends at `sortedCount`, the position the next pop fills.
///
/// A view over `Reranker`'s buffers for one call: it owns no memory.
struct RelevanceOrder {
    /// Min-heap of sort keys `(UInt32.max − relevance bits) << 32 | index`: smallest = most relevant.
    private let heap: UnsafeMutablePointer<UInt64>
    /// Candidate index at each sorted position `0 ..< sortedCount`.
    let order: UnsafeMutablePointer<Int32>
    /// The next live sorted position after each one.
    let next: UnsafeMutablePointer<Int32>
    private var heapCount: Int
    /// Positions sorted so far.
    private(set) var sortedCount = 0
    /// The first live sorted position (`sortedCount` when none is).
    private(set) var head = 0

    /// Heapifies `keys[0 ..< count]` in place. O(count).
    init(
        keys: UnsafeMutablePointer<UInt64>, order: UnsafeMutablePointer<Int32>, next: UnsafeMutablePointer<Int32>,
        count: Int
    ) {
        heap = keys
        self.order = order
        self.next = next
        heapCount = count
        var start = count / 2 - 1
        while start >= 0 {
            siftDown(start)
            start -= 1
        }
    }

    @inline(__always)
    private func siftDown(_ start: Int) {
        let n = heapCount
        let value = heap[start]
        var root = start
        while true {
            var child = 2 &* root &+ 1
            if child >= n { break }
            if child &+ 1 < n, heap[child &+ 1] < heap[child] { child &+= 1 }
            if value <= heap[child] { break }
            heap[root] = heap[child]
            root = child
        }
        heap[root] = value
    }

    /// Sorts one more candidate (the most relevant unsorted one) onto the end of the list.
    /// Returns false when every candidate is sorted. O(log n).
    @inline(__always)
    mutating func extend() -> Bool {
        guard heapCount > 0 else { return false }
        let top = heap[0]
        heapCount &-= 1
        if heapCount > 0 {
            heap[0] = heap[heapCount]
            siftDown(0)
        }
        order[sortedCount] = Int32(truncatingIfNeeded: top)
        next[sortedCount] = Int32(truncatingIfNeeded: sortedCount &+ 1)
        sortedCount &+= 1
        return true
    }

    /// Removes sorted position `o`, whose live predecessor is `previous` (−1 at the head).
    @inline(__always)
    mutating func unlink(_ o: Int, after previous: Int) {
        if previous < 0 { head = Int(next[o]) } else { next[previous] = next[o] }
    }

    /// Links every sorted position again, for when items that were unlinked become placeable
    /// (pins released, cap room returned). O(sortedCount).
    mutating func relinkAll() {
        for o in 0..<sortedCount { next[o] = Int32(truncatingIfNeeded: o &+ 1) }
        head = 0
    }
}

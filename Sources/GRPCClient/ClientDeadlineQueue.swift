import NIOCore

/// The deadlines of one connection's calls, earliest first (a binary min-heap), so that the
/// connection needs one timer for the earliest deadline instead of a scheduled task per call.
///
/// Calls that complete before their deadline are not searched for and removed: they stay in the
/// heap until they reach the front (``dropCompletedFront()`` pops them there). With one timeout
/// for every call, as in LoadTests and rankctl, the front is the oldest call, so the heap stays
/// about as large as the number of calls in flight; in the worst case (one stuck call at the
/// front) it holds the calls started within one timeout. O(log n) insert and pop.
///
/// Not thread-safe: owned by ``GRPCClientConnectionHandler`` on its event loop.
struct ClientDeadlineQueue {
    private var heap: [(deadline: NIODeadline, stream: ClientStream)] = []

    /// Entries in the heap, completed calls included.
    var count: Int { heap.count }

    /// The earliest entry, if any.
    var first: (deadline: NIODeadline, stream: ClientStream)? { heap.first }

    mutating func insert(_ deadline: NIODeadline, _ stream: ClientStream) {
        heap.append((deadline, stream))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes the earliest entry.
    mutating func removeFirst() {
        precondition(!heap.isEmpty, "removeFirst on an empty deadline queue")
        let last = heap.count - 1
        heap.swapAt(0, last)
        heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { break }
            let right = left + 1
            let earlier = right < heap.count && heap[right].deadline < heap[left].deadline ? right : left
            guard heap[earlier].deadline < heap[parent].deadline else { break }
            heap.swapAt(parent, earlier)
            parent = earlier
        }
    }

    /// Pops completed calls from the front.
    mutating func dropCompletedFront() {
        while let first = heap.first, first.stream.completed { removeFirst() }
    }

    mutating func removeAll() {
        heap.removeAll()
    }
}

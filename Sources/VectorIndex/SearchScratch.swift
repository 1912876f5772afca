/// A (score, row) pair as kept in search heaps.
@usableFromInline
struct ScoredRow {
    @usableFromInline var score: Float
    @usableFromInline var row: Int32

    @inlinable init(score: Float, row: Int32) {
        self.score = score
        self.row = row
    }
}

/// The order a heap keeps at its top. Ties on score break on row so results never depend on insertion order.
@usableFromInline
protocol HeapOrder {
    /// Whether `a` belongs nearer the top than `b`.
    static func above(_ a: ScoredRow, _ b: ScoredRow) -> Bool
}

/// Top is the worst hit (lowest score, then highest row): the bounded result set.
@usableFromInline
enum WorstOnTop: HeapOrder {
    @inlinable @inline(__always)
    static func above(_ a: ScoredRow, _ b: ScoredRow) -> Bool {
        a.score < b.score || (a.score == b.score && a.row > b.row)
    }
}

/// Top is the best candidate (highest score, then lowest row): the walk frontier.
@usableFromInline
enum BestOnTop: HeapOrder {
    @inlinable @inline(__always)
    static func above(_ a: ScoredRow, _ b: ScoredRow) -> Bool {
        a.score > b.score || (a.score == b.score && a.row < b.row)
    }
}

/// A binary heap over memory owned by `SearchScratch`. Grows (allocates) only when a push exceeds its capacity,
/// which stops happening once the scratch has served a few searches of the same `ef`.
@usableFromInline
struct ScratchHeap<Order: HeapOrder> {
    @usableFromInline var storage: UnsafeMutablePointer<ScoredRow>
    @usableFromInline var capacity: Int
    @usableFromInline var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        storage = .allocate(capacity: self.capacity)
    }

    func deallocate() { storage.deallocate() }

    @inlinable var top: ScoredRow { storage[0] }
    @inlinable var isEmpty: Bool { count == 0 }
    @inlinable mutating func removeAll() { count = 0 }

    @inlinable
    mutating func push(_ element: ScoredRow) {
        if count == capacity { grow() }
        var i = count
        count += 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Order.above(element, storage[parent]) else { break }
            storage[i] = storage[parent]
            i = parent
        }
        storage[i] = element
    }

    @inlinable
    @discardableResult
    mutating func pop() -> ScoredRow {
        let result = storage[0]
        count -= 1
        if count > 0 { siftDown(storage[count]) }
        return result
    }

    /// Replaces the top with `element` (a pop and a push in one sift).
    @inlinable
    mutating func replaceTop(_ element: ScoredRow) {
        siftDown(element)
    }

    @inlinable
    mutating func siftDown(_ element: ScoredRow) {
        var i = 0
        while true {
            var child = 2 * i + 1
            if child >= count { break }
            if child + 1 < count && Order.above(storage[child + 1], storage[child]) { child += 1 }
            guard Order.above(storage[child], element) else { break }
            storage[i] = storage[child]
            i = child
        }
        storage[i] = element
    }

    @usableFromInline
    mutating func grow() {
        let bigger = UnsafeMutablePointer<ScoredRow>.allocate(capacity: capacity * 2)
        bigger.moveInitialize(from: storage, count: count)
        storage.deallocate()
        storage = bigger
        capacity *= 2
    }
}

/// Per-thread reusable search state: a generation-tagged visited set over rows, the frontier and result heaps, and
/// buffers for the prepared query and extracted hits.
///
/// Not thread-safe: give each thread (each NIO event loop) its own. Sized on first use for an index's row count and
/// dimension; after that a search performs no heap allocation (as long as `ef`, `k` and the index stay the same or
/// smaller). Reset between searches costs O(1): the visited set is cleared by bumping a 16-bit generation tag and is
/// zeroed only when the tag wraps (every 65 535 searches).
public final class SearchScratch {
    @usableFromInline var visited: UnsafeMutablePointer<UInt16>
    @usableFromInline var visitedCapacity: Int
    @usableFromInline var generation: UInt16 = 0
    @usableFromInline var candidates: ScratchHeap<BestOnTop>
    @usableFromInline var results: ScratchHeap<WorstOnTop>
    @usableFromInline var query: UnsafeMutablePointer<Float>
    @usableFromInline var queryCapacity: Int
    @usableFromInline var hits: UnsafeMutablePointer<ScoredRow>
    @usableFromInline var hitsCapacity: Int
    /// Unvisited neighbours of the node being expanded (at most a level-0 list: 2 × 256).
    @usableFromInline let pending: UnsafeMutablePointer<Int32> = .allocate(capacity: 512)
    /// Their scores, filled by one `RowScorer.scoreBatch` call.
    @usableFromInline let pendingScores: UnsafeMutablePointer<Float> = .allocate(capacity: 512)
    /// Nodes scored by the last search (graph walk or exact scan): a cost measure for benchmarks and planning.
    public internal(set) var lastScoredCount = 0
    /// A quantised scan's candidates (their matrix rows) before exact re-scoring.
    var rescoreRows: [Int32] = []
    /// A partition search's centroid scores (``PartitionIndex``).
    private var partitions: UnsafeMutablePointer<ScoredRow> = .allocate(capacity: 1)
    private var partitionsCapacity = 1

    /// Creates scratch sized for `rowCount` rows of `dimension` floats and searches with `ef` up to `ef`
    /// (all grow on demand).
    public init(rowCount: Int = 0, dimension: Int = 0, ef: Int = 64) {
        visitedCapacity = max(rowCount, 1)
        visited = .allocate(capacity: visitedCapacity)
        visited.initialize(repeating: 0, count: visitedCapacity)
        candidates = ScratchHeap(capacity: 4 * ef)
        results = ScratchHeap(capacity: ef + 1)
        queryCapacity = max(dimension, 16)
        query = .allocate(capacity: queryCapacity)
        hitsCapacity = max(ef, 16)
        hits = .allocate(capacity: hitsCapacity)
    }

    deinit {
        visited.deallocate()
        candidates.deallocate()
        results.deallocate()
        query.deallocate()
        hits.deallocate()
        pending.deallocate()
        pendingScores.deallocate()
        partitions.deallocate()
    }

    /// Starts a new search over `rowCount` rows: grows the visited set if needed and advances the generation.
    @usableFromInline
    func beginSearch(rowCount: Int) {
        if rowCount > visitedCapacity {
            visited.deallocate()
            visitedCapacity = rowCount
            visited = .allocate(capacity: rowCount)
            visited.initialize(repeating: 0, count: rowCount)
            generation = 0
        }
        if generation == UInt16.max {
            visited.update(repeating: 0, count: visitedCapacity)
            generation = 0
        }
        generation &+= 1
        candidates.removeAll()
        results.removeAll()
    }

    /// Copies `source` into the query buffer (normalised when `normalize`), zero-padded to a multiple of 16.
    @usableFromInline
    func prepareQuery(_ source: UnsafeBufferPointer<Float>, normalize: Bool) -> UnsafePointer<Float> {
        let padded = (source.count + 15) & ~15
        if padded > queryCapacity {
            query.deallocate()
            queryCapacity = padded
            query = .allocate(capacity: padded)
        }
        var norm: Float = 0
        if normalize { for x in source { norm += x * x } }
        let factor: Float = normalize && norm > 0 ? 1 / norm.squareRoot() : 1
        for i in 0..<source.count { query[i] = source[i] * factor }
        for i in source.count..<padded { query[i] = 0 }
        return UnsafePointer(query)
    }

    /// The hit buffer, grown to at least `capacity` entries (its contents are not kept when it grows).
    func hitsBuffer(capacity: Int) -> UnsafeMutablePointer<ScoredRow> {
        if capacity > hitsCapacity {
            hits.deallocate()
            hitsCapacity = capacity
            hits = .allocate(capacity: capacity)
        }
        return hits
    }

    /// The partition buffer, grown to at least `capacity` entries (its contents are not kept when it grows).
    func partitionBuffer(capacity: Int) -> UnsafeMutablePointer<ScoredRow> {
        if capacity > partitionsCapacity {
            partitions.deallocate()
            partitionsCapacity = capacity
            partitions = .allocate(capacity: capacity)
        }
        return partitions
    }

    /// Moves the best `k` entries of the result heap into `output`, best first, emptying the heap.
    @usableFromInline
    func drainResults(k: Int, into output: inout [SearchResult]) {
        while results.count > k { results.pop() }
        let n = results.count
        let hits = hitsBuffer(capacity: n)
        var i = n
        while !results.isEmpty {
            i -= 1
            hits[i] = results.pop()
        }
        output.removeAll(keepingCapacity: true)
        for j in 0..<n { output.append(SearchResult(row: hits[j].row, score: hits[j].score)) }
    }
}

import Reranking
import Synchronization
import UserEvents
import VectorIndex

/// The reusable memory of one Rank call: search scratch (visited tags, heaps), the candidate set,
/// the re-ranker's buffers, the query vector and the filter's bitsets. Once a scratch has served
/// a request of a given size, the next such request allocates only what its response needs.
///
/// Not thread-safe: one request at a time. ``RankScratchPool`` hands them out, and only ever to
/// one caller at a time; that is what `@unchecked Sendable` relies on (it lets the pool move a
/// scratch between threads).
public final class RankScratch: @unchecked Sendable {
    let search = SearchScratch()
    var results: [SearchResult] = []
    /// Several include-list values' pools, before they are merged into `results`: runs best first, run i ending
    /// at `mergedRunEnds[i]`; `mergedRunHeads` is the merge's position in each.
    var mergedResults: [SearchResult] = []
    var mergedRunEnds: [Int] = []
    var mergedRunHeads: [Int] = []
    var candidates: CandidateSet?
    let rerank = Reranker()
    var query: [Float] = []
    var vector: [Float] = []
    var includeCategoryBits: [UInt64] = []
    var excludeCategoryBits: [UInt64] = []
    var includeBrandBits: [UInt64] = []
    var excludeBrandBits: [UInt64] = []
    var excludedRows: [Int32] = []
    var candidateRows: [Int32] = []
    var popularRows: [(row: Int32, popularity: Float)] = []
    /// The user's recorded events (a copy of their slot) and what the call derives from them.
    var eventView = UserEventView()
    var shown: [ShownItem] = []
    var sessionRows: [Int32] = []
    var sessionWeights: [Float] = []
    /// Sorted by row.
    var rotation: [RotationEntry] = []
    var eventExcludedRows: [Int32] = []
    var eventExcludedRowReasons: [EventExclusionReason] = []
    var eventExcludedCategories: [UInt32] = []
    var eventExcludedCategoryReasons: [EventExclusionReason] = []

    public init() {}

    /// The candidate set for `dimension`, emptied.
    func candidateSet(dimension: Int, capacity: Int) -> CandidateSet {
        if var set = candidates, set.dimension == dimension {
            candidates = nil  // hand over the storage without a copy
            set.removeAll()
            set.reserveCapacity(capacity)
            return set
        }
        return CandidateSet(dimension: dimension, reservingCapacity: capacity)
    }
}

/// Hands out scratch to concurrent requests (one per event loop in steady state) and takes it
/// back, so no request allocates its working memory from scratch. Thread-safe.
public final class RankScratchPool: Sendable {
    private let free = Mutex<[RankScratch]>([])

    public init() {}

    /// Runs `body` with a scratch nobody else is using.
    public func withScratch<Result, Failure: Error>(
        _ body: (RankScratch) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let scratch = free.withLock { $0.popLast() } ?? RankScratch()
        defer { free.withLock { $0.append(scratch) } }
        return try body(scratch)
    }
}

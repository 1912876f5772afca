/// How the candidate set of a filtered search is known, so the search can pick the cheaper of the graph walk and
/// an exact scan.
public enum CandidateRows {
    /// Any row may pass; `estimatedPassCount` (if known, e.g. from per-category counts) is how many pass the filter.
    case all(estimatedPassCount: Int?)
    /// Only these rows can pass (e.g. a category's posting list, sorted); the filter must still reject all others,
    /// as the graph walk may be chosen.
    case rows(UnsafeBufferPointer<Int32>)
    /// Force an exact scan over all rows.
    case exact
}

/// Which path served a search.
public enum SearchPath: String, Sendable, CaseIterable {
    /// The HNSW walk.
    case graph
    /// An exact scan over all rows, chosen up front (small estimated pass count or `.exact`).
    case exactScan
    /// An exact scan over the given row list.
    case exactRows
    /// The walk found fewer than k passing rows, or spent its budget (see ``FilteredSearchPlan``), so an exact scan
    /// (over the row list when one was given) replaced it.
    case graphThenExact
    /// A scan of a subset's quantised (`i8`) copy, then exact re-scoring of its best candidates
    /// (``SubsetIndex``).
    case quantisedRows
    /// The best partitions' quantised rows, then exact re-scoring of their best candidates (``PartitionIndex``).
    case partitions
}

/// An HNSW index: encoded vectors plus the graph over them, both read in place. Thread-safe for concurrent searches
/// as long as each thread uses its own `SearchScratch`.
public struct HNSWIndex: @unchecked Sendable {
    public let vectors: VectorMatrix
    public let graph: HNSWGraph
    /// A quantised copy of `vectors`, row for row, that the graph walk scores instead of `vectors` (a quarter of the
    /// bytes per visited row for f32); the walk's best candidates are then re-scored exactly against `vectors`, so
    /// results and their scores are exact for the rows found (docs/INDEX.md "Quantised walk").
    public let walkVectors: VectorMatrix?

    /// The metric scores are computed with (the graph's).
    public var metric: Metric { graph.metric }

    /// - Throws: `VectorIndexError.graphMismatch` when the graph covers a different number of rows, or
    ///   `walkVectors` a different number of rows or dimensions than `vectors`.
    public init(vectors: VectorMatrix, graph: HNSWGraph, walkVectors: VectorMatrix? = nil) throws(VectorIndexError) {
        guard vectors.count == graph.rowCount else {
            throw VectorIndexError.graphMismatch(reason: "graph has \(graph.rowCount) rows, matrix \(vectors.count)")
        }
        if let walkVectors, walkVectors.count != vectors.count || walkVectors.dimension != vectors.dimension {
            throw VectorIndexError.graphMismatch(
                reason:
                    "walk rows are \(walkVectors.count) × \(walkVectors.dimension), vectors \(vectors.count) × \(vectors.dimension)"
            )
        }
        self.vectors = vectors
        self.graph = graph
        self.walkVectors = walkVectors
    }

    /// Searches the `k` best rows passing `filter`, best first.
    ///
    /// Guarantees: never returns a row the filter rejects; returns `min(k, passing rows)` results (when the walk
    /// finds fewer than `k` passing rows it falls back to an exact scan). With a known pass count (`candidates`: an
    /// estimate or a row list) the search follows a ``FilteredSearchPlan``: it scans exactly when that is cheaper
    /// than walking (so selective filters are exact, not approximate), otherwise it walks with a beam widened by
    /// 1 / selectivity and falls back to the scan if the walk costs more than the scan would have.
    ///
    /// - Parameters:
    ///   - query: `dimension` floats (not normalised; cosine normalises internally).
    ///   - k: results wanted (≥ 1).
    ///   - ef: beam width at level 0 (raised to `k` if smaller); recall grows with it.
    ///   - filter: which rows may be returned.
    ///   - candidates: what is known about the passing rows.
    ///   - scratch: this thread's scratch; no allocation happens once it has served a search of this size.
    ///   - results: replaced with the hits (capacity is kept, so reuse one array per thread).
    /// - Returns: the path that served the search.
    /// - Throws: `VectorIndexError.queryDimensionMismatch`, `.invalidArgument` (k < 1, list row out of range).
    @discardableResult
    public func search<Filter: RowFilter>(
        query: UnsafeBufferPointer<Float>, k: Int, ef: Int, filter: Filter,
        candidates: CandidateRows = .all(estimatedPassCount: nil), scratch: SearchScratch,
        into results: inout [SearchResult]
    ) throws(VectorIndexError) -> SearchPath {
        // The walk and scan loops are specialised inside this module for these two concrete filter types, so the
        // kernels are inlined; a caller's filter type costs one dynamic call per scored row, not a generic loop.
        if filter is AcceptAllRows {
            return try specialisedSearch(query, k, ef, AcceptAllRows(), candidates, scratch, &results)
        }
        if let excluded = filter as? ExcludedRowSet {
            return try specialisedSearch(query, k, ef, excluded, candidates, scratch, &results)
        }
        return try specialisedSearch(query, k, ef, AnyRowFilter(filter), candidates, scratch, &results)
    }

    private func specialisedSearch<Filter: RowFilter>(
        _ query: UnsafeBufferPointer<Float>, _ k: Int, _ ef: Int, _ filter: Filter, _ candidates: CandidateRows,
        _ scratch: SearchScratch, _ results: inout [SearchResult]
    ) throws(VectorIndexError) -> SearchPath {
        try ExactSearch.validate(query: query, k: k, dimension: vectors.dimension)
        var beam = max(ef, k)
        var budget = Int.max
        var listed: UnsafeBufferPointer<Int32>?
        switch candidates {
        case .exact:
            try exact(query, k, filter, nil, scratch, &results)
            return .exactScan
        case .rows(let rows):
            let plan = plan(passCount: rows.count, listed: true, ef: ef, k: k)
            guard let walk = plan.walk else {
                try exact(query, k, filter, rows, scratch, &results)
                return .exactRows
            }
            (beam, budget, listed) = (walk.beam, walk.budget, rows)
        case .all(let estimate):
            if let estimate {
                let plan = plan(passCount: estimate, listed: false, ef: ef, k: k)
                guard let walk = plan.walk else {
                    try exact(query, k, filter, nil, scratch, &results)
                    return .exactScan
                }
                (beam, budget) = (walk.beam, walk.budget)
            }
        }
        guard vectors.count > 0 else {
            results.removeAll(keepingCapacity: true)
            return .graph
        }
        let prepared = scratch.prepareQuery(query, normalize: metric.normalizesQuery)
        // An unfiltered walk follows only the inner-product prefix of a hybrid graph's level-0 lists: the angular
        // rest exists so that filtered walks reach low-norm rows, and only costs an unfiltered walk evaluations. A
        // walk that only skips a few withdrawn rows (`ExcludedRowSet`) is an unfiltered one for this purpose.
        let navigationOnly = filter is AcceptAllRows || filter is ExcludedRowSet
        var walk = GraphWalk(
            layout: graph.layout, entry: graph.entryPoint, maxLevel: graph.maxLevel, ef: beam,
            filter: filter, scratch: scratch, navigationOnly: navigationOnly, budget: budget)
        walk.dispatch(metric: metric, matrix: walkVectors ?? vectors, query: prepared)
        if walk.exhaustedBudget || scratch.results.count < k {
            // The walk cost what the scan would have (the estimate misled the plan), or fewer than k passing rows
            // were reachable within the beam: only an exact scan can tell whether more exist, and the contract is
            // never to return fewer than k when k pass.
            let walked = scratch.lastScoredCount
            try exact(query, k, filter, listed, scratch, &results)
            scratch.lastScoredCount += walked
            return .graphThenExact
        }
        if walkVectors != nil {
            try rescoreWalk(query, k, scratch, &results)
        } else {
            scratch.drainResults(k: k, into: &results)
        }
        return .graph
    }

    /// The exact pass of a quantised walk: the walk's best `QuantisedScan.candidates` rows re-scored against
    /// `vectors`, best `k` kept. `lastScoredCount` counts both passes.
    private func rescoreWalk(
        _ query: UnsafeBufferPointer<Float>, _ k: Int, _ scratch: SearchScratch, _ results: inout [SearchResult]
    ) throws(VectorIndexError) {
        let walked = scratch.lastScoredCount
        let keep = QuantisedScan.candidates(k: k, rows: scratch.results.count)
        while scratch.results.count > keep { scratch.results.pop() }
        scratch.rescoreRows.removeAll(keepingCapacity: true)
        while !scratch.results.isEmpty { scratch.rescoreRows.append(scratch.results.pop().row) }
        try scratch.rescoreRows.withUnsafeBufferPointer { (candidates) throws(VectorIndexError) in
            try ExactSearch.specialisedSearch(
                vectors: vectors, metric: metric, query: query, k: k, filter: AcceptAllRows(), rows: candidates,
                scratch: scratch, into: &results)
        }
        scratch.lastScoredCount += walked
    }

    /// Unfiltered search: the `k` best rows, best first. See `search(query:k:ef:filter:candidates:scratch:into:)`.
    @discardableResult
    public func search(
        query: UnsafeBufferPointer<Float>, k: Int, ef: Int, scratch: SearchScratch, into results: inout [SearchResult]
    ) throws(VectorIndexError) -> SearchPath {
        try search(query: query, k: k, ef: ef, filter: AcceptAllRows(), scratch: scratch, into: &results)
    }

    private func exact<Filter: RowFilter>(
        _ query: UnsafeBufferPointer<Float>, _ k: Int, _ filter: Filter, _ rows: UnsafeBufferPointer<Int32>?,
        _ scratch: SearchScratch, _ results: inout [SearchResult]
    ) throws(VectorIndexError) {
        try ExactSearch.specialisedSearch(
            vectors: vectors, metric: metric, query: query, k: k, filter: filter,
            rows: rows, scratch: scratch, into: &results)
    }

    /// The plan for a filtered search that passes `passCount` rows (see ``FilteredSearchPlan``).
    func plan(passCount: Int, listed: Bool, ef: Int, k: Int) -> FilteredSearchPlan {
        FilteredSearchPlan(rows: vectors.count, passCount: passCount, listed: listed, ef: ef, k: k, m: graph.m)
    }
}

/// How ``HNSWIndex`` serves a filtered search whose pass count is known (an estimate or a row list): an exact scan,
/// or a graph walk with a widened beam and a cost budget. Costs are in kernel evaluations (docs/INDEX.md "Filters").
///
/// - **Beam widening**: a walk under a filter passing a fraction `s` of the rows must look about `1/s` times deeper
///   into the ranking for the same recall, so its beam is `ef × min(1/s, maxBeamWidening)` (never below `k`).
/// - **Walk or scan**: a filtered walk scores about `beam × 2M` rows per `beam` passing ones, so about
///   `beam × 2M / s` in total; an exact scan scores every passing row, plus (without a row list) a filter check per
///   row, costed at 1/16 of an evaluation. The cheaper wins; ties go to the scan, which is exact. (The walk's count
///   is an upper estimate — measured walks score 0.1–0.7 of it — and a walk evaluation, a random access plus heap
///   work, costs about twice a scanned row: the two errors roughly cancel.)
/// - **Budget**: when the estimate misleads (a filter correlated with the vectors, so the query's neighbourhood holds
///   few passing rows), a walk may explore far more than predicted. It gives up after scoring half the scan's cost,
///   about the time the scan takes, and the scan runs instead: a search never costs more than about twice the
///   cheaper path.
public struct FilteredSearchPlan: Equatable, Sendable {
    /// A graph walk: its beam width and the evaluations it may spend before giving up for the scan.
    public struct Walk: Equatable, Sendable {
        public let beam: Int
        public let budget: Int
    }

    /// The walk to run; nil when the exact scan is cheaper.
    public let walk: Walk?

    /// The most a beam is widened over `ef`.
    public static let maxBeamWidening: Double = 20

    public init(rows: Int, passCount: Int, listed: Bool, ef: Int, k: Int, m: Int) {
        let rowCount = max(rows, 1)
        guard passCount > 0 else {
            walk = nil
            return
        }
        let selectivity = min(1, Double(passCount) / Double(rowCount))
        let widening = min(1 / selectivity, Self.maxBeamWidening)
        let beam = max(Int((Double(ef) * widening).rounded(.up)), k)
        let walkCost = Double(beam) * 2 * Double(m) / selectivity
        let scanCost = Double(passCount) + (listed ? 0 : Double(rowCount) / 16)
        if scanCost <= walkCost {
            walk = nil
        } else {
            walk = Walk(beam: beam, budget: max(Int(scanCost / 2), beam))
        }
    }
}

/// The level-0 walk, specialised per kernel through `RowScorerVisitor`; leaves results in the scratch.
struct GraphWalk<Filter: RowFilter>: RowScorerVisitor {
    let layout: HNSWGraphLayout
    let entry: Int32
    let maxLevel: Int
    let ef: Int
    let filter: Filter
    let scratch: SearchScratch
    let navigationOnly: Bool
    /// Evaluations the walk may spend before it gives up (`exhaustedBudget`).
    let budget: Int
    private(set) var exhaustedBudget = false

    init(
        layout: HNSWGraphLayout, entry: Int32, maxLevel: Int, ef: Int, filter: Filter, scratch: SearchScratch,
        navigationOnly: Bool, budget: Int = .max
    ) {
        self.layout = layout
        self.entry = entry
        self.maxLevel = maxLevel
        self.ef = ef
        self.filter = filter
        self.scratch = scratch
        self.navigationOnly = navigationOnly
        self.budget = budget
    }

    mutating func visit<Scorer: RowScorer>(_ scorer: Scorer) {
        var scored = 1
        let start = ScoredRow(score: scorer.score(entry), row: entry)
        let bottom = greedyDescend(layout, scorer: scorer, entry: start, from: maxLevel, downTo: 0, scored: &scored)
        exhaustedBudget = !searchLayer(
            layout, level: 0, scorer: scorer, filter: filter, entry: bottom, ef: ef,
            scratch: scratch, scored: &scored, navigationOnly: navigationOnly,
            budget: budget)
        scratch.lastScoredCount = scored
    }
}

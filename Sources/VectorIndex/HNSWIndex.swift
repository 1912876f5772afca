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
public enum SearchPath: String, Sendable {
    /// The HNSW walk.
    case graph
    /// An exact scan over all rows, chosen up front (small estimated pass count or `.exact`).
    case exactScan
    /// An exact scan over the given row list.
    case exactRows
    /// The walk found fewer than k passing rows, so an exact scan over all rows replaced it.
    case graphThenExact
}

/// An HNSW index: encoded vectors plus the graph over them, both read in place. Thread-safe for concurrent searches
/// as long as each thread uses its own `SearchScratch`.
public struct HNSWIndex: @unchecked Sendable {
    public let vectors: VectorMatrix
    public let graph: HNSWGraph

    /// The metric scores are computed with (the graph's).
    public var metric: Metric { graph.metric }

    /// - Throws: `VectorIndexError.graphMismatch` when the graph covers a different number of rows.
    public init(vectors: VectorMatrix, graph: HNSWGraph) throws(VectorIndexError) {
        guard vectors.count == graph.rowCount else {
            throw VectorIndexError.graphMismatch(reason: "graph has \(graph.rowCount) rows, matrix \(vectors.count)")
        }
        self.vectors = vectors
        self.graph = graph
    }

    /// Searches the `k` best rows passing `filter`, best first.
    ///
    /// Guarantees: never returns a row the filter rejects; returns `min(k, passing rows)` results (when the walk
    /// finds fewer than `k` passing rows it falls back to an exact scan). With a known small candidate set
    /// (`candidates`) it scans exactly instead of walking, when the cost model (see docs/INDEX.md) says that is
    /// cheaper — so very selective filters are exact, not approximate.
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
        return try specialisedSearch(query, k, ef, AnyRowFilter(filter), candidates, scratch, &results)
    }

    private func specialisedSearch<Filter: RowFilter>(
        _ query: UnsafeBufferPointer<Float>, _ k: Int, _ ef: Int, _ filter: Filter, _ candidates: CandidateRows,
        _ scratch: SearchScratch, _ results: inout [SearchResult]
    ) throws(VectorIndexError) -> SearchPath {
        try ExactSearch.validate(query: query, k: k, dimension: vectors.dimension)
        let beam = max(ef, k)
        switch candidates {
        case .exact:
            try exact(query, k, filter, nil, scratch, &results)
            return .exactScan
        case .rows(let rows):
            if prefersExact(passCount: rows.count, listed: true, beam: beam) {
                try exact(query, k, filter, rows, scratch, &results)
                return .exactRows
            }
        case .all(let estimate):
            if let estimate, prefersExact(passCount: estimate, listed: false, beam: beam) {
                try exact(query, k, filter, nil, scratch, &results)
                return .exactScan
            }
        }
        guard vectors.count > 0 else {
            results.removeAll(keepingCapacity: true)
            return .graph
        }
        let prepared = scratch.prepareQuery(query, normalize: metric.normalizesQuery)
        // An unfiltered walk follows only the inner-product prefix of a hybrid graph's level-0 lists: the angular
        // rest exists so that filtered walks reach low-norm rows, and only costs an unfiltered walk evaluations.
        var walk = GraphWalk(layout: graph.layout, entry: graph.entryPoint, maxLevel: graph.maxLevel, ef: beam,
                             filter: filter, scratch: scratch, navigationOnly: filter is AcceptAllRows)
        walk.dispatch(metric: metric, matrix: vectors, query: prepared)
        if scratch.results.count < k {
            // Fewer than k passing rows were reachable within the beam: only an exact scan can tell whether more
            // exist, and the contract is never to return fewer than k when k pass.
            let walked = scratch.lastScoredCount
            try exact(query, k, filter, nil, scratch, &results)
            scratch.lastScoredCount += walked
            return .graphThenExact
        }
        scratch.drainResults(k: k, into: &results)
        return .graph
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
        try ExactSearch.specialisedSearch(vectors: vectors, metric: metric, query: query, k: k, filter: filter,
                                          rows: rows, scratch: scratch, into: &results)
    }

    /// Cost model, in kernel evaluations: a filtered walk scores about `beam × 2M` rows per `beam` passing results,
    /// so about `beam × 2M / selectivity` in total; an exact scan scores every passing row, plus (without a row list)
    /// a filter check per row, costed at 1/16 of a kernel evaluation.
    func prefersExact(passCount: Int, listed: Bool, beam: Int) -> Bool {
        let rows = max(vectors.count, 1)
        guard passCount > 0 else { return true }
        let selectivity = min(1, Double(passCount) / Double(rows))
        let walkCost = Double(beam * 2 * graph.m) / selectivity
        let exactCost = Double(passCount) + (listed ? 0 : Double(rows) / 16)
        return exactCost <= walkCost
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

    mutating func visit<Scorer: RowScorer>(_ scorer: Scorer) {
        var scored = 1
        let start = ScoredRow(score: scorer.score(entry), row: entry)
        let bottom = greedyDescend(layout, scorer: scorer, entry: start, from: maxLevel, downTo: 0, scored: &scored)
        searchLayer(layout, level: 0, scorer: scorer, filter: filter, entry: bottom, ef: ef, scratch: scratch,
                    scored: &scored, navigationOnly: navigationOnly)
        scratch.lastScoredCount = scored
    }
}

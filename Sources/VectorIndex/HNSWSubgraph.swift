/// An HNSW graph over a subset of an index's rows — the items of one category or brand — that shares the index's
/// vectors: node `i` of the graph is row `rows[i]` of the matrix. A filter restricted to that subset walks this
/// graph as an unfiltered walk of a smaller index instead of wading through the global graph's other rows
/// (docs/INDEX.md "Attribute subgraphs"; the idea of Qdrant's payload-index links and Filtered-DiskANN).
///
/// The rows must be ascending, so local order is row order and ties between equal scores break on the row exactly
/// as in the global graph. Valid while the memory behind `rows` and the graph lives (a snapshot mapping).
public struct HNSWSubgraph: @unchecked Sendable {
    /// Matrix row of each graph node, ascending.
    public let rows: UnsafeBufferPointer<Int32>
    /// The graph over local node ids `0..<rows.count`.
    public let graph: HNSWGraph
    /// The subset's vectors as `i8` rows in node order (node `i` is row `i`), or nil: what a search scans
    /// before re-scoring the best candidates exactly (a quarter of the f32 bytes, read contiguously).
    public let quantised: VectorMatrix?

    /// - Throws: `VectorIndexError.graphMismatch` when the graph or the quantised rows cover a different number of
    ///   nodes than `rows` lists, `.invalidArgument` when a row is outside `0..<matrixRows` or the rows are not
    ///   strictly ascending, or the quantised rows are not `i8`.
    /// - Complexity: O(rows) (every row is checked once, so a search never reads outside the matrix).
    public init(
        rows: UnsafeBufferPointer<Int32>, graph: HNSWGraph, quantised: VectorMatrix? = nil, matrixRows: Int
    ) throws(VectorIndexError) {
        guard rows.count == graph.rowCount else {
            throw .graphMismatch(reason: "subgraph has \(graph.rowCount) nodes for \(rows.count) rows")
        }
        if let quantised {
            guard quantised.count == rows.count else {
                throw .graphMismatch(reason: "subgraph has \(quantised.count) quantised rows for \(rows.count) rows")
            }
            guard quantised.elementType == .i8 else {
                throw .invalidArgument(name: "subgraph quantised rows", value: 0, reason: "must be i8")
            }
        }
        var previous: Int32 = -1
        for (index, row) in rows.enumerated() {
            guard row > previous, Int(row) < matrixRows else {
                throw .invalidArgument(
                    name: "subgraph rows[\(index)]", value: Int(row),
                    reason: "must be ascending and below the matrix's \(matrixRows) rows")
            }
            previous = row
        }
        self.rows = rows
        self.graph = graph
        self.quantised = quantised
    }
}

/// How a search within a subgraph uses the subgraph's quantised rows.
public enum QuantisedScan {
    /// Largest subset scanned through its quantised rows; a larger one is walked. About 2 ms of scan at 64
    /// dimensions on this project's reference machine (docs/BENCHMARKS.md, "Category pages").
    public static let maxRows = 400_000
    /// Candidates re-scored exactly per result asked for; the quantisation error moves few rows by more than
    /// that many places (docs/INDEX.md "Attribute subgraphs").
    public static let oversample = 2
    /// Extra candidates re-scored on top, so that small `k` still has a margin.
    public static let margin = 32

    /// Candidates to re-score for `k` results among `rows`.
    static func candidates(k: Int, rows: Int) -> Int { min(rows, k * oversample + margin) }
}

extension HNSWIndex {
    /// Searches the `k` best rows passing `filter` among the rows of `subgraph`, best first: the same contract as
    /// ``search(query:k:ef:filter:candidates:scratch:into:)`` over the subset. Rows outside the subset are never
    /// returned, so `filter` need not reject them.
    ///
    /// The plan: a subgraph with quantised rows and at most ``QuantisedScan/maxRows`` rows is scanned through
    /// them — every passing row scored in `i8`, the best `2k + 32` re-scored exactly against the index's own
    /// vectors (`.quantisedRows`) — because a walk's recall at the engine's pool sizes (hundreds) is poor on
    /// inner-product data and the scan's is not. Otherwise the ``FilteredSearchPlan`` of the subset decides:
    /// `estimatedPassCount` is how many of the subgraph's rows pass (nil: all of them); a selective filter is
    /// scanned exactly over the subset's rows, else the subgraph is walked (its full lists) with a beam widened
    /// by 1 / selectivity, and an exact scan of the subset replaces a walk that overspends its budget or finds
    /// fewer than `k` passing rows.
    ///
    /// - Throws: `VectorIndexError.queryDimensionMismatch`, `.invalidArgument` (k < 1), `.graphMismatch` when the
    ///   subgraph's metric differs from the index's.
    @discardableResult
    public func search<Filter: RowFilter>(
        query: UnsafeBufferPointer<Float>, k: Int, ef: Int, filter: Filter, within subgraph: HNSWSubgraph,
        estimatedPassCount: Int?, scratch: SearchScratch, into results: inout [SearchResult]
    ) throws(VectorIndexError) -> SearchPath {
        guard subgraph.graph.metric == metric else {
            throw .graphMismatch(reason: "subgraph metric \(subgraph.graph.metric) ≠ index metric \(metric)")
        }
        if filter is AcceptAllRows {
            return try specialisedSubgraphSearch(
                query, k, ef, AcceptAllRows(), subgraph, estimatedPassCount, scratch, &results)
        }
        return try specialisedSubgraphSearch(
            query, k, ef, AnyRowFilter(filter), subgraph, estimatedPassCount, scratch, &results)
    }

    private func specialisedSubgraphSearch<Filter: RowFilter>(
        _ query: UnsafeBufferPointer<Float>, _ k: Int, _ ef: Int, _ filter: Filter, _ subgraph: HNSWSubgraph,
        _ estimate: Int?, _ scratch: SearchScratch, _ results: inout [SearchResult]
    ) throws(VectorIndexError) -> SearchPath {
        try ExactSearch.validate(query: query, k: k, dimension: vectors.dimension)
        let count = subgraph.rows.count
        guard count > 0 else {
            results.removeAll(keepingCapacity: true)
            return .exactRows
        }
        if let quantised = subgraph.quantised, count <= QuantisedScan.maxRows {
            try scanQuantised(query, k, filter, subgraph, quantised, scratch, &results)
            return .quantisedRows
        }
        let plan = FilteredSearchPlan(
            rows: count, passCount: min(estimate ?? count, count), listed: true, ef: ef, k: k, m: subgraph.graph.m)
        guard let walk = plan.walk else {
            try scanSubset(query, k, filter, subgraph, scratch, &results)
            return .exactRows
        }
        let prepared = scratch.prepareQuery(query, normalize: metric.normalizesQuery)
        let rows = subgraph.rows.baseAddress!
        let graph = subgraph.graph
        var visitor = SubsetVisitor(
            inner: GraphWalk(
                layout: graph.layout, entry: graph.entryPoint, maxLevel: graph.maxLevel, ef: walk.beam,
                filter: SubsetFilter(base: filter, rows: rows), scratch: scratch,
                // The full lists: on a subset the navigation prefix alone lost a fifth of recall@10 (docs/INDEX.md).
                navigationOnly: false, budget: walk.budget),
            rows: rows)
        visitor.dispatch(metric: metric, matrix: vectors, query: prepared)
        if visitor.inner.exhaustedBudget || scratch.results.count < k {
            let walked = scratch.lastScoredCount
            try scanSubset(query, k, filter, subgraph, scratch, &results)
            scratch.lastScoredCount += walked
            return .graphThenExact
        }
        scratch.drainResults(k: k, into: &results)
        // The walk kept local node ids; ascending rows keep the order (and its tie-breaks) intact.
        for index in results.indices { results[index].row = rows[Int(results[index].row)] }
        return .graph
    }

    /// Scores every passing node's quantised row, then re-scores the best candidates exactly against `vectors` and
    /// keeps the best `k` (ties by row, as every search). Allocation-free once the scratch has grown.
    private func scanQuantised<Filter: RowFilter>(
        _ query: UnsafeBufferPointer<Float>, _ k: Int, _ filter: Filter, _ subgraph: HNSWSubgraph,
        _ quantised: VectorMatrix, _ scratch: SearchScratch, _ results: inout [SearchResult]
    ) throws(VectorIndexError) {
        let rows = subgraph.rows.baseAddress!
        let wanted = QuantisedScan.candidates(k: k, rows: subgraph.rows.count)
        if filter is AcceptAllRows {
            try ExactSearch.specialisedSearch(
                vectors: quantised, metric: metric, query: query, k: wanted, filter: AcceptAllRows(), rows: nil,
                scratch: scratch, into: &scratch.quantisedHits)
        } else {
            try ExactSearch.specialisedSearch(
                vectors: quantised, metric: metric, query: query, k: wanted, filter: SubsetFilter(base: filter, rows: rows),
                rows: nil, scratch: scratch, into: &scratch.quantisedHits)
        }
        let scanned = scratch.lastScoredCount
        scratch.rescoreRows.removeAll(keepingCapacity: true)
        for hit in scratch.quantisedHits { scratch.rescoreRows.append(rows[Int(hit.row)]) }
        guard !scratch.rescoreRows.isEmpty else {
            results.removeAll(keepingCapacity: true)
            return
        }
        try scratch.rescoreRows.withUnsafeBufferPointer { (candidates) throws(VectorIndexError) in
            try ExactSearch.specialisedSearch(
                vectors: vectors, metric: metric, query: query, k: k, filter: AcceptAllRows(), rows: candidates,
                scratch: scratch, into: &results)
        }
        scratch.lastScoredCount += scanned
    }

    private func scanSubset<Filter: RowFilter>(
        _ query: UnsafeBufferPointer<Float>, _ k: Int, _ filter: Filter, _ subgraph: HNSWSubgraph,
        _ scratch: SearchScratch, _ results: inout [SearchResult]
    ) throws(VectorIndexError) {
        try ExactSearch.specialisedSearch(
            vectors: vectors, metric: metric, query: query, k: k, filter: filter, rows: subgraph.rows,
            scratch: scratch, into: &results)
    }
}

/// Scores a subgraph's local node ids by their matrix rows.
struct SubsetScorer<Base: RowScorer>: RowScorer {
    let base: Base
    let rows: UnsafePointer<Int32>

    @inline(__always) func score(_ node: Int32) -> Float { base.score(rows[Int(node)]) }
    @inline(__always) func prefetch(_ node: Int32) { base.prefetch(rows[Int(node)]) }
}

/// A row filter asked about a subgraph's local node ids.
struct SubsetFilter<Base: RowFilter>: RowFilter {
    let base: Base
    let rows: UnsafePointer<Int32>

    @inline(__always) func accepts(_ node: Int32) -> Bool { base.accepts(rows[Int(node)]) }
}

/// Runs a visitor (a walk over a subgraph's layout) with the kernel's scorer wrapped to read matrix rows.
struct SubsetVisitor<Inner: RowScorerVisitor>: RowScorerVisitor {
    var inner: Inner
    let rows: UnsafePointer<Int32>

    mutating func visit<Scorer: RowScorer>(_ scorer: Scorer) -> Inner.Result {
        inner.visit(SubsetScorer(base: scorer, rows: rows))
    }
}

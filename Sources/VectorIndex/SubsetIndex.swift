/// An index over a subset of a matrix's rows — the items of one category or brand — for searches restricted to it
/// (docs/INDEX.md "Attribute subgraphs"; the idea of Qdrant's payload-index links and Filtered-DiskANN's label
/// graphs):
/// - `rows`: the subset's matrix rows, ascending (so local order is row order, and ties between equal scores break
///   on the row exactly as in a search of the whole matrix);
/// - `quantised`: the subset's vectors as `i8` rows in the same order (local id `i` is row `rows[i]`): a quarter of
///   the f32 bytes, read contiguously by a scan;
/// - `graph`: optionally, an HNSW graph over the local ids, for a subset too large to scan.
///
/// Scores are always exact: the quantised rows only pick candidates, which are re-scored against the full matrix.
/// Valid while the memory behind `rows`, `quantised` and `graph` lives (a snapshot mapping). Thread-safe for
/// concurrent searches, each with its own `SearchScratch`.
public struct SubsetIndex: @unchecked Sendable {
    /// Matrix row of each local id, ascending.
    public let rows: UnsafeBufferPointer<Int32>
    /// The subset's vectors as `i8` rows, local id `i` at row `i`.
    public let quantised: VectorMatrix
    /// An HNSW graph over the local ids, or nil (the subset is always scanned).
    public let graph: HNSWGraph?
    /// Rows of the matrix the subset indexes into.
    public let matrixRows: Int
    /// Subsets with a graph and more rows than this are walked, smaller ones scanned (``QuantisedScan/maxRows``;
    /// tests lower it to reach the walk on small data).
    public let scanMaxRows: Int

    /// - Throws: `VectorIndexError.graphMismatch` when the graph or the quantised rows cover a different number of
    ///   rows than `rows` lists, `.invalidArgument` when a row is outside `0..<matrixRows`, the rows are not strictly
    ///   ascending, or the quantised rows are not `i8`.
    /// - Complexity: O(rows) (every row is checked once, so a search never reads outside the matrix).
    public init(
        rows: UnsafeBufferPointer<Int32>, quantised: VectorMatrix, graph: HNSWGraph?, matrixRows: Int,
        scanMaxRows: Int = QuantisedScan.maxRows
    ) throws(VectorIndexError) {
        if let graph, rows.count != graph.rowCount {
            throw .graphMismatch(reason: "subset graph has \(graph.rowCount) nodes for \(rows.count) rows")
        }
        guard quantised.count == rows.count else {
            throw .graphMismatch(reason: "subset has \(quantised.count) quantised rows for \(rows.count) rows")
        }
        guard quantised.elementType == .i8 else {
            throw .invalidArgument(name: "subset quantised rows", value: 0, reason: "must be i8")
        }
        var previous: Int32 = -1
        for (index, row) in rows.enumerated() {
            guard row > previous, Int(row) < matrixRows else {
                throw .invalidArgument(
                    name: "subset rows[\(index)]", value: Int(row),
                    reason: "must be ascending and below the matrix's \(matrixRows) rows")
            }
            previous = row
        }
        self.rows = rows
        self.quantised = quantised
        self.graph = graph
        self.matrixRows = matrixRows
        self.scanMaxRows = scanMaxRows
    }

    /// Searches the `k` best rows of `vectors` passing `filter` among the subset's rows, best first (ties: lower row
    /// first), with exact scores: the contract of `HNSWIndex.search` over the subset. Rows outside the subset are
    /// never returned, so `filter` need not reject them; pass `AcceptAllRows` when every row of the subset passes.
    ///
    /// The plan: a subset without a graph, or with at most `scanMaxRows` rows, is **scanned through its
    /// quantised rows** — every passing row scored in `i8`, the best `2k + 32` re-scored exactly (`.quantisedRows`);
    /// its recall does not depend on where the query lies, a walk's does (at the engine's pools of hundreds, an
    /// inner-product graph's recall is poor). A larger subset follows its ``FilteredSearchPlan``
    /// (`estimatedPassCount`: how many of its rows pass, nil: all): a selective filter scans the subset's rows
    /// exactly, else the graph is walked (full lists) with a beam widened by 1 / selectivity, and an exact scan of
    /// the subset replaces a walk that overspends its budget or finds fewer than `k` passing rows.
    ///
    /// - Parameters:
    ///   - vectors: the matrix the subset indexes (its `matrixRows` rows), scored exactly.
    /// - Throws: `VectorIndexError.queryDimensionMismatch`, `.invalidArgument` (k < 1), `.graphMismatch` when
    ///   `vectors` or `metric` do not match the subset.
    @discardableResult
    public func search<Filter: RowFilter>(
        query: UnsafeBufferPointer<Float>, k: Int, ef: Int, filter: Filter, estimatedPassCount: Int?,
        vectors: VectorMatrix, metric: Metric, scratch: SearchScratch, into results: inout [SearchResult]
    ) throws(VectorIndexError) -> SearchPath {
        guard vectors.count == matrixRows, vectors.dimension == quantised.dimension else {
            throw .graphMismatch(
                reason: "subset indexes \(matrixRows) rows × \(quantised.dimension), the matrix is "
                    + "\(vectors.count) × \(vectors.dimension)")
        }
        if let graph, graph.metric != metric {
            throw .graphMismatch(reason: "subset graph metric \(graph.metric) ≠ search metric \(metric)")
        }
        let search = SubsetSearch(
            subset: self, query: query, vectors: vectors, metric: metric, k: k, ef: ef,
            estimate: estimatedPassCount, scratch: scratch)
        if filter is AcceptAllRows { return try search.run(AcceptAllRows(), &results) }
        return try search.run(AnyRowFilter(filter), &results)
    }
}

/// How a subset search uses the subset's quantised rows.
public enum QuantisedScan {
    /// Largest subset scanned through its quantised rows when it also has a graph; a larger one is walked. About
    /// 2.7 ms of scan at 64 dimensions on this project's reference machine (docs/BENCHMARKS.md "Category pages").
    public static let maxRows = 400_000
    /// Candidates re-scored exactly per result asked for; the quantisation error moves few rows by more than
    /// that many places (docs/INDEX.md "Attribute subgraphs").
    public static let oversample = 2
    /// Extra candidates re-scored on top, so that small `k` still has a margin.
    public static let margin = 32

    /// Candidates to re-score for `k` results among `rows`.
    static func candidates(k: Int, rows: Int) -> Int { min(rows, k * oversample + margin) }
}

/// One search of a subset, specialised per filter (`AcceptAllRows` or `AnyRowFilter`) inside this module.
private struct SubsetSearch {
    let subset: SubsetIndex
    let query: UnsafeBufferPointer<Float>
    let vectors: VectorMatrix
    let metric: Metric
    let k: Int
    let ef: Int
    let estimate: Int?
    let scratch: SearchScratch

    func run<Filter: RowFilter>(_ filter: Filter, _ results: inout [SearchResult]) throws(VectorIndexError)
        -> SearchPath
    {
        try ExactSearch.validate(query: query, k: k, dimension: vectors.dimension)
        let count = subset.rows.count
        guard count > 0 else {
            results.removeAll(keepingCapacity: true)
            return .exactRows
        }
        guard let graph = subset.graph, count > subset.scanMaxRows else {
            try scanQuantised(query, filter, &results)
            return .quantisedRows
        }
        let plan = FilteredSearchPlan(
            rows: count, passCount: min(estimate ?? count, count), listed: true, ef: ef, k: k, m: graph.m)
        guard let walk = plan.walk else {
            try scanRows(query, filter, &results)
            return .exactRows
        }
        let prepared = scratch.prepareQuery(query, normalize: metric.normalizesQuery)
        let rows = subset.rows.baseAddress!
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
            try scanRows(query, filter, &results)
            scratch.lastScoredCount += walked
            return .graphThenExact
        }
        scratch.drainResults(k: k, into: &results)
        // The walk kept local ids; ascending rows keep the order (and its tie-breaks) intact.
        for index in results.indices { results[index].row = rows[Int(results[index].row)] }
        return .graph
    }

    /// Scores every passing local id's quantised row, then re-scores the best candidates exactly against `vectors`
    /// and keeps the best `k`. Allocation-free once the scratch has grown.
    private func scanQuantised<Filter: RowFilter>(
        _ query: UnsafeBufferPointer<Float>, _ filter: Filter, _ results: inout [SearchResult]
    ) throws(VectorIndexError) {
        let rows = subset.rows.baseAddress!
        let keep = QuantisedScan.candidates(k: k, rows: subset.rows.count)
        let prepared = scratch.prepareQuery(query, normalize: metric.normalizesQuery)
        // A subset's rows all pass an `AcceptAllRows`, so only another filter needs the local-id adapter.
        func choose<Local: RowFilter>(_ local: Local) -> UnsafeBufferPointer<ScoredRow> {
            var selection = CandidateSelection(
                rowCount: subset.rows.count, keep: keep, filter: local, scratch: scratch)
            selection.dispatch(metric: metric, matrix: subset.quantised, query: prepared)
            return selection.chosen
        }
        let chosen =
            filter is AcceptAllRows ? choose(AcceptAllRows()) : choose(SubsetFilter(base: filter, rows: rows))
        let scanned = scratch.lastScoredCount
        try scratch.rescore(chosen, rows: rows, vectors: vectors, metric: metric, query: query, k: k, into: &results)
        scratch.lastScoredCount += scanned
    }

    /// The exact f32 scan of the subset's rows.
    private func scanRows<Filter: RowFilter>(
        _ query: UnsafeBufferPointer<Float>, _ filter: Filter, _ results: inout [SearchResult]
    ) throws(VectorIndexError) {
        try ExactSearch.specialisedSearch(
            vectors: vectors, metric: metric, query: query, k: k, filter: filter, rows: subset.rows,
            scratch: scratch, into: &results)
    }
}

extension SearchScratch {
    /// The exact pass of a quantised search: re-scores the `chosen` local ids (matrix row `rows[id]`) against
    /// `vectors` and keeps the best `k`, best first. Candidates need no order: the exact pass keeps the best `k` by
    /// (score, row) whatever the order. Sets `lastScoredCount` to the rows re-scored.
    func rescore(
        _ chosen: UnsafeBufferPointer<ScoredRow>, rows: UnsafePointer<Int32>, vectors: VectorMatrix, metric: Metric,
        query: UnsafeBufferPointer<Float>, k: Int, into results: inout [SearchResult]
    ) throws(VectorIndexError) {
        rescoreRows.removeAll(keepingCapacity: true)
        for hit in chosen { rescoreRows.append(rows[Int(hit.row)]) }
        guard !rescoreRows.isEmpty else {
            results.removeAll(keepingCapacity: true)
            lastScoredCount = 0
            return
        }
        try rescoreRows.withUnsafeBufferPointer { (candidates) throws(VectorIndexError) in
            try ExactSearch.specialisedSearch(
                vectors: vectors, metric: metric, query: query, k: k, filter: AcceptAllRows(), rows: candidates,
                scratch: self, into: &results)
        }
    }
}

/// Scores a subset's local ids by their matrix rows.
struct SubsetScorer<Base: RowScorer>: RowScorer {
    let base: Base
    let rows: UnsafePointer<Int32>

    @inline(__always) func score(_ node: Int32) -> Float { base.score(rows[Int(node)]) }
    @inline(__always) func prefetch(_ node: Int32) { base.prefetch(rows[Int(node)]) }
}

/// A row filter asked about a subset's local ids.
struct SubsetFilter<Base: RowFilter>: RowFilter {
    let base: Base
    let rows: UnsafePointer<Int32>

    @inline(__always) func accepts(_ node: Int32) -> Bool { base.accepts(rows[Int(node)]) }

    /// A block of local ids is a slice of the subset's rows: one batched call to the base filter.
    func acceptedRows(_ nodes: Range<Int32>, into output: UnsafeMutablePointer<Int32>) -> Int {
        let list = UnsafeBufferPointer(start: rows + Int(nodes.lowerBound), count: nodes.count)
        return base.acceptedPositions(in: list, first: nodes.lowerBound, into: output)
    }
}

/// Runs a visitor (a walk over a subset's graph) with the kernel's scorer wrapped to read matrix rows.
struct SubsetVisitor<Inner: RowScorerVisitor>: RowScorerVisitor {
    var inner: Inner
    let rows: UnsafePointer<Int32>

    mutating func visit<Scorer: RowScorer>(_ scorer: Scorer) -> Inner.Result {
        inner.visit(SubsetScorer(base: scorer, rows: rows))
    }
}

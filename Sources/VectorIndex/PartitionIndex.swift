/// An inverted-file (IVF) partition of a matrix's rows for deep candidate pools: the rows are grouped by their
/// nearest centroid (k-means at build time, ``PartitionBuilder``), each group stored as `i8` rows next to each other.
/// A search scores the centroids, then scans the quantised rows of the best partitions until it has seen
/// `probeRows` passing rows, and re-scores the best candidates exactly (docs/INDEX.md "Partitions").
///
/// Why: at the engine's pools of hundreds an inner-product graph's recall is poor (recall@300 0.5 at ef 300 on 1M
/// items, docs/BENCHMARKS.md), because the deep neighbours of a query are spread over regions a walk does not
/// reach; the best partitions by centroid hold them, and a contiguous quantised scan of tens of thousands of rows
/// costs less than a walk that scores thousands of rows at random.
///
/// - `centroids`: one `f32` row per partition;
/// - `starts`: partition `p` is local ids `starts[p] ..< starts[p + 1]` (`starts[0] = 0`, ascending, last = rows);
/// - `rows`: the matrix row of each local id, ascending within a partition (ties between equal scores then break on
///   the row exactly as in a search of the whole matrix);
/// - `quantised`: the rows as `i8`, local id `i` at row `i`.
///
/// Valid while the memory behind them lives (a snapshot mapping). Thread-safe for concurrent searches, each with its
/// own `SearchScratch`.
public struct PartitionIndex: @unchecked Sendable {
    public let centroids: VectorMatrix
    public let starts: UnsafeBufferPointer<Int32>
    public let rows: UnsafeBufferPointer<Int32>
    public let quantised: VectorMatrix
    /// Rows of the matrix the partitions index into.
    public let matrixRows: Int

    /// Number of partitions.
    public var partitionCount: Int { centroids.count }

    /// - Throws: `VectorIndexError.graphMismatch` when the pieces disagree on counts or dimensions,
    ///   `.invalidArgument` when `starts` is not ascending from 0 to the row count, a row is outside
    ///   `0..<matrixRows`, a partition's rows are not ascending, or the element types are not `f32` / `i8`.
    /// - Complexity: O(partitions + rows): every row is checked once, so a search never reads outside the matrix.
    ///   (That each row appears exactly once is checked by the snapshot's structure verification.)
    public init(
        centroids: VectorMatrix, starts: UnsafeBufferPointer<Int32>, rows: UnsafeBufferPointer<Int32>,
        quantised: VectorMatrix, matrixRows: Int
    ) throws(VectorIndexError) {
        guard centroids.elementType == .f32, quantised.elementType == .i8 else {
            throw .invalidArgument(name: "partition element types", value: 0, reason: "must be f32 centroids, i8 rows")
        }
        guard centroids.dimension == quantised.dimension, starts.count == centroids.count + 1,
            quantised.count == rows.count
        else {
            throw .graphMismatch(
                reason: "partitions: \(centroids.count) centroids × \(centroids.dimension), \(starts.count) starts, "
                    + "\(rows.count) rows, \(quantised.count) quantised rows × \(quantised.dimension)")
        }
        guard starts.first == 0, starts.last == Int32(truncatingIfNeeded: rows.count) else {
            throw .invalidArgument(
                name: "partition starts", value: Int(starts.first ?? -1), reason: "must run from 0 to \(rows.count)")
        }
        for partition in 0..<centroids.count {
            let (low, high) = (starts[partition], starts[partition + 1])
            guard low <= high else {
                throw .invalidArgument(name: "partition starts[\(partition + 1)]", value: Int(high), reason: "descends")
            }
            var previous: Int32 = -1
            for local in Int(low)..<Int(high) {
                let row = rows[local]
                guard row > previous, Int(row) < matrixRows else {
                    throw .invalidArgument(
                        name: "partition rows[\(local)]", value: Int(row),
                        reason: "must be ascending within partition \(partition) and below \(matrixRows)")
                }
                previous = row
            }
        }
        self.centroids = centroids
        self.starts = starts
        self.rows = rows
        self.quantised = quantised
        self.matrixRows = matrixRows
    }

    /// The `k` best rows of `vectors` passing `filter`, best first (ties: lower row first), with exact scores —
    /// approximately: among the partitions scanned. Partitions are scanned in order of their centroid's score until
    /// at least `probeRows` passing rows (and at least the candidates to re-score) have been seen, or all have.
    ///
    /// - Parameters:
    ///   - probeRows: passing rows to see before stopping; the recall knob (all rows: an exact quantised scan).
    ///   - vectors: the matrix the partitions index (its `matrixRows` rows), scored exactly.
    /// - Throws: `VectorIndexError.queryDimensionMismatch`, `.invalidArgument` (k < 1), `.graphMismatch` when
    ///   `vectors` does not match.
    /// - Complexity: O(partitions × d) for the centroids plus O(scanned rows × d) in `i8` plus O(k × d) re-scoring.
    @discardableResult
    public func search<Filter: RowFilter>(
        query: UnsafeBufferPointer<Float>, k: Int, probeRows: Int, filter: Filter, vectors: VectorMatrix,
        metric: Metric, scratch: SearchScratch, into results: inout [SearchResult]
    ) throws(VectorIndexError) -> SearchPath {
        guard vectors.count == matrixRows, vectors.dimension == quantised.dimension else {
            throw .graphMismatch(
                reason: "partitions index \(matrixRows) rows × \(quantised.dimension), the matrix is "
                    + "\(vectors.count) × \(vectors.dimension)")
        }
        try ExactSearch.validate(query: query, k: k, dimension: vectors.dimension)
        results.removeAll(keepingCapacity: true)
        guard !rows.isEmpty else { return .partitions }
        let prepared = scratch.prepareQuery(query, normalize: metric.normalizesQuery)
        // Centroids are means of the stored rows, so the inner product ranks them for ip and cosine alike.
        var ranking = CentroidRanking(count: partitionCount, scratch: scratch)
        ranking.dispatch(metric: metric == .l2 ? .l2 : .ip, matrix: centroids, query: prepared)
        let keep = QuantisedScan.candidates(k: k, rows: rows.count)
        var scan = PartitionScan(
            index: self, order: ranking.scores, keep: keep, probeRows: max(probeRows, keep), scratch: scratch)
        if filter is AcceptAllRows {
            scan.filter = nil
        } else {
            scan.filter = AnyRowFilter(filter)
        }
        scan.dispatch(metric: metric, matrix: quantised, query: prepared)
        let scanned = scratch.lastScoredCount + partitionCount
        try scratch.rescore(
            scan.chosen, rows: rows.baseAddress!, vectors: vectors, metric: metric, query: query, k: k, into: &results)
        scratch.lastScoredCount += scanned
        return .partitions
    }
}

/// Scores every centroid into the scratch's partition buffer (unsorted).
private struct CentroidRanking: RowScorerVisitor {
    let count: Int
    let scores: UnsafeMutablePointer<ScoredRow>

    init(count: Int, scratch: SearchScratch) {
        self.count = count
        scores = scratch.partitionBuffer(capacity: count)
    }

    mutating func visit<Scorer: RowScorer>(_ scorer: Scorer) {
        for partition in 0..<Int32(count) {
            scores[Int(partition)] = ScoredRow(score: scorer.score(partition), row: partition)
        }
    }
}

/// Scans partitions best centroid first, offering their passing local ids to one candidate selection, until enough
/// passing rows have been seen. Partitions are ordered lazily: the best `batch` of those not yet scanned are moved to
/// the front and sorted, so a search that stops after a few dozen partitions never sorts all of them.
private struct PartitionScan: RowScorerVisitor {
    let index: PartitionIndex
    let order: UnsafeMutablePointer<ScoredRow>
    let keep: Int
    let probeRows: Int
    let scratch: SearchScratch
    var filter: AnyRowFilter?
    private(set) var chosen = UnsafeBufferPointer<ScoredRow>(start: nil, count: 0)

    init(
        index: PartitionIndex, order: UnsafeMutablePointer<ScoredRow>, keep: Int, probeRows: Int, scratch: SearchScratch
    ) {
        self.index = index
        self.order = order
        self.keep = keep
        self.probeRows = probeRows
        self.scratch = scratch
    }

    mutating func visit<Scorer: RowScorer>(_ scorer: Scorer) {
        var top = TopCandidates(keep: keep, scratch: scratch)
        let partitions = index.partitionCount
        let rows = index.rows.baseAddress!
        let passing = scratch.pending
        // About twice the partitions an average-sized share of `probeRows` needs, 8 to 64 at a time.
        let batch = max(8, min(64, 2 * probeRows * partitions / max(index.rows.count, 1) + 1))
        var seen = 0
        var scanned = 0
        var next = 0
        var sortedEnd = 0
        while next < partitions, seen < probeRows {
            if next == sortedEnd {
                let take = min(batch, partitions - next)
                CandidateSelection<AcceptAllRows>.moveBestToFront(order + next, count: partitions - next, best: take)
                Self.insertionSort(order + next, count: take)
                sortedEnd = next + take
            }
            let partition = Int(order[next].row)
            next += 1
            let low = Int(index.starts[partition])
            let high = Int(index.starts[partition + 1])
            scanned += high - low
            if let filter {
                var start = low
                while start < high {
                    let end = min(start + ExactScan<AcceptAllRows>.block, high)
                    let list = UnsafeBufferPointer(start: rows + start, count: end - start)
                    let accepted = filter.acceptedPositions(in: list, first: Int32(start), into: passing)
                    for position in 0..<accepted { top.offer(passing[position], scorer.score(passing[position])) }
                    seen += accepted
                    start = end
                }
            } else {
                for local in Int32(low)..<Int32(high) { top.offer(local, scorer.score(local)) }
                seen += high - low
            }
        }
        scratch.lastScoredCount = scanned
        chosen = top.finish()
    }

    /// Sorts `count` (≤ 64) entries best first in place, allocation-free.
    private static func insertionSort(_ elements: UnsafeMutablePointer<ScoredRow>, count: Int) {
        guard count > 1 else { return }
        for i in 1..<count {
            let element = elements[i]
            var j = i
            while j > 0, BestOnTop.above(element, elements[j - 1]) {
                elements[j] = elements[j - 1]
                j -= 1
            }
            elements[j] = element
        }
    }
}

/// Brute-force k-nearest search: the oracle for HNSW and the path for small or heavily filtered candidate sets.
///
/// Scans every row (or an explicit row list such as a category posting list), scoring only rows the filter
/// accepts, keeping the best `k` in a bounded heap. Returns exactly `min(k, passing rows)` results, best first
/// (ties: lower row first). Zero allocation in steady state with a reused `SearchScratch` and `results` array.
/// Complexity: O(rows × dimension) for an all-row scan; O(list × dimension) for a row list.
public enum ExactSearch {
    /// - Parameters:
    ///   - rows: if given, only these rows are considered (each must be in `0..<vectors.count`); else all rows.
    /// - Throws: `VectorIndexError.queryDimensionMismatch`, `.invalidArgument` for k < 1 or a row out of range.
    public static func search<Filter: RowFilter>(
        vectors: VectorMatrix, metric: Metric, query: UnsafeBufferPointer<Float>, k: Int, filter: Filter,
        rows: UnsafeBufferPointer<Int32>? = nil, scratch: SearchScratch, into results: inout [SearchResult]
    ) throws(VectorIndexError) {
        if filter is AcceptAllRows {
            try specialisedSearch(
                vectors: vectors, metric: metric, query: query, k: k, filter: AcceptAllRows(),
                rows: rows, scratch: scratch, into: &results)
        } else {
            try specialisedSearch(
                vectors: vectors, metric: metric, query: query, k: k, filter: AnyRowFilter(filter),
                rows: rows, scratch: scratch, into: &results)
        }
    }

    /// Called only with `AcceptAllRows` and `AnyRowFilter`, so the scan is specialised per kernel in this module.
    static func specialisedSearch<Filter: RowFilter>(
        vectors: VectorMatrix, metric: Metric, query: UnsafeBufferPointer<Float>, k: Int, filter: Filter,
        rows: UnsafeBufferPointer<Int32>?, scratch: SearchScratch, into results: inout [SearchResult]
    ) throws(VectorIndexError) {
        try validate(query: query, k: k, dimension: vectors.dimension)
        if let rows {
            for row in rows where row < 0 || Int(row) >= vectors.count {
                throw VectorIndexError.invalidArgument(name: "rows[]", value: Int(row), reason: "row out of range")
            }
        }
        let prepared = scratch.prepareQuery(query, normalize: metric.normalizesQuery)
        var visitor = ExactScan(rowCount: vectors.count, rows: rows, k: k, filter: filter, scratch: scratch)
        visitor.dispatch(metric: metric, matrix: vectors, query: prepared)
        scratch.drainResults(k: k, into: &results)
    }

    static func validate(query: UnsafeBufferPointer<Float>, k: Int, dimension: Int) throws(VectorIndexError) {
        guard query.count == dimension else {
            throw VectorIndexError.queryDimensionMismatch(expected: dimension, actual: query.count)
        }
        guard k >= 1 else { throw VectorIndexError.invalidArgument(name: "k", value: k, reason: "must be ≥ 1") }
    }
}

/// The scan itself, specialised per kernel through `RowScorerVisitor`.
struct ExactScan<Filter: RowFilter>: RowScorerVisitor {
    let rowCount: Int
    let rows: UnsafeBufferPointer<Int32>?
    let k: Int
    let filter: Filter
    let scratch: SearchScratch

    mutating func visit<Scorer: RowScorer>(_ scorer: Scorer) {
        scratch.beginSearch(rowCount: 0)
        // The heap is used through a local and stored back at the end (every access to a class's stored `var` is a
        // dynamic exclusivity check), and the worst kept hit is held in a local too: most rows of a scan fail it,
        // and that comparison is then all they cost besides the kernel.
        var heap = Heap(results: scratch.results, k: k)
        defer { scratch.results = heap.results }
        if let rows, filter is AcceptAllRows {
            for row in rows { heap.offer(ScoredRow(score: scorer.score(row), row: row)) }
            scratch.lastScoredCount = rows.count
        } else if let rows {
            // The filter picks the passing positions of each block of the list in one call.
            let passing = scratch.pending
            var start = 0
            while start < rows.count {
                let end = Swift.min(start + Self.block, rows.count)
                let block = UnsafeBufferPointer(rebasing: rows[start..<end])
                let count = filter.acceptedPositions(in: block, first: Int32(start), into: passing)
                for index in 0..<count {
                    let row = rows[Int(passing[index])]
                    heap.offer(ScoredRow(score: scorer.score(row), row: row))
                }
                start = end
            }
            scratch.lastScoredCount = rows.count
        } else if filter is AcceptAllRows {
            for row in 0..<Int32(rowCount) { heap.offer(ScoredRow(score: scorer.score(row), row: row)) }
            scratch.lastScoredCount = rowCount
        } else {
            // The filter picks the passing rows of each block in one call (see `RowFilter.acceptedRows`).
            let passing = scratch.pending
            var start: Int32 = 0
            while Int(start) < rowCount {
                let end = Int32(Swift.min(Int(start) + Self.block, rowCount))
                let count = filter.acceptedRows(start..<end, into: passing)
                for index in 0..<count {
                    let row = passing[index]
                    heap.offer(ScoredRow(score: scorer.score(row), row: row))
                }
                start = end
            }
            scratch.lastScoredCount = rowCount
        }
    }

    /// The best `k` hits so far, worst on top, with the top cached for the common "not good enough" test.
    private struct Heap {
        var results: ScratchHeap<WorstOnTop>
        let k: Int
        /// The worst kept hit once `k` are kept; until then nil (every hit is kept).
        var worst: ScoredRow?

        init(results: ScratchHeap<WorstOnTop>, k: Int) {
            self.results = results
            self.k = k
            worst = results.count >= k ? results.top : nil
        }

        @inline(__always)
        mutating func offer(_ hit: ScoredRow) {
            if let worst {
                guard BestOnTop.above(hit, worst) else { return }
                results.replaceTop(hit)
            } else {
                results.push(hit)
                guard results.count >= k else { return }
            }
            worst = results.top
        }
    }

    /// Rows per `acceptedRows` call (the scratch's `pending` buffer holds 512).
    static var block: Int { 512 }
}

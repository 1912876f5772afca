/// The best `keep` rows of a scan, chosen without a heap: the quantised pass of a subset search (`SubsetIndex`).
///
/// A bounded heap pays a sift of log₂(keep) unpredictable branches for every row that enters it, and a scan that
/// keeps hundreds of candidates lets thousands in (about keep × ln(rows / keep)): 0.5 ms of category-0's 1.8 ms at
/// keep = 632. Here a row that beats the running threshold is appended to a buffer of 2 × keep; when the buffer fills,
/// a selection moves the best `keep` to its front and the threshold rises to the keep-th best. Each row then costs
/// a compare and, rarely, an append; a compaction costs O(keep).
///
/// The order is the search order (score descending, then row ascending), so the chosen set does not depend on how
/// the selection partitions. A row scoring exactly the threshold after a compaction is not admitted: the set is of
/// candidates for exact re-scoring, where such a tie cannot matter for more than the last place.
struct CandidateSelection<Filter: RowFilter>: RowScorerVisitor {
    let rowCount: Int
    let keep: Int
    let filter: Filter
    let scratch: SearchScratch
    /// Ids of the chosen rows, in no particular order: a view of the scratch's hit buffer, valid until the scratch's
    /// next search.
    private(set) var chosen: UnsafeBufferPointer<ScoredRow> = UnsafeBufferPointer(start: nil, count: 0)

    init(rowCount: Int, keep: Int, filter: Filter, scratch: SearchScratch) {
        precondition(keep >= 1, "keep must be ≥ 1")
        self.rowCount = rowCount
        self.keep = keep
        self.filter = filter
        self.scratch = scratch
    }

    mutating func visit<Scorer: RowScorer>(_ scorer: Scorer) {
        var top = TopCandidates(keep: keep, scratch: scratch)
        if filter is AcceptAllRows {
            for row in 0..<Int32(rowCount) { top.offer(row, scorer.score(row)) }
        } else {
            let passing = scratch.pending
            var start: Int32 = 0
            while Int(start) < rowCount {
                let end = Int32(Swift.min(Int(start) + ExactScan<Filter>.block, rowCount))
                let accepted = filter.acceptedRows(start..<end, into: passing)
                for index in 0..<accepted { top.offer(passing[index], scorer.score(passing[index])) }
                start = end
            }
        }
        scratch.lastScoredCount = rowCount
        chosen = top.finish()
    }

    /// Reorders `elements[0 ..< count]` so that its `best` best elements (by `BestOnTop`) come first, in no
    /// particular order, with the `best`-th best at index `best - 1` (a quickselect; expected O(count)).
    static func moveBestToFront(_ elements: UnsafeMutablePointer<ScoredRow>, count: Int, best: Int) {
        precondition(best >= 1 && best <= count, "best must be in 1...count")
        @inline(__always) func before(_ a: ScoredRow, _ b: ScoredRow) -> Bool { BestOnTop.above(a, b) }
        let target = best - 1
        var low = 0
        var high = count - 1
        while low < high {
            // Median of three: elements[low], [middle], [high] in order, the median as pivot.
            let middle = low + (high - low) / 2
            if before(elements[middle], elements[low]) { elements.swapAt(middle, low) }
            if before(elements[high], elements[low]) { elements.swapAt(high, low) }
            if before(elements[high], elements[middle]) { elements.swapAt(high, middle) }
            let pivot = elements[middle]
            var i = low
            var j = high
            while i <= j {
                while before(elements[i], pivot) { i += 1 }
                while before(pivot, elements[j]) { j -= 1 }
                if i <= j {
                    elements.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            // Now [low ... j] come no later than the pivot and [i ... high] no earlier; between them, the pivot.
            if target <= j {
                high = j
            } else if target >= i {
                low = i
            } else {
                return
            }
        }
    }
}

/// The running best `keep` of a stream of scored rows, without a heap (see ``CandidateSelection``): a row that
/// beats the running threshold is appended to a buffer of 2 × keep; when it fills, a selection moves the best
/// `keep` to its front and the threshold rises to the keep-th best. The buffer is the scratch's hit buffer.
struct TopCandidates {
    let keep: Int
    private let buffer: UnsafeMutablePointer<ScoredRow>
    private var count = 0
    private var threshold = -Float.infinity
    private var compacted = false

    init(keep: Int, scratch: SearchScratch) {
        precondition(keep >= 1, "keep must be ≥ 1")
        self.keep = keep
        buffer = scratch.hitsBuffer(capacity: 2 * keep)
    }

    /// Considers `row` with `score`. O(1) amortised.
    @inline(__always)
    mutating func offer(_ row: Int32, _ score: Float) {
        guard !compacted || score > threshold else { return }
        buffer[count] = ScoredRow(score: score, row: row)
        count &+= 1
        if count == 2 * keep {
            CandidateSelection<AcceptAllRows>.moveBestToFront(buffer, count: count, best: keep)
            count = keep
            threshold = buffer[keep - 1].score
            compacted = true
        }
    }

    /// The best `keep` offered (or all, if fewer), in no particular order: a view of the scratch's hit buffer,
    /// valid until its next search.
    mutating func finish() -> UnsafeBufferPointer<ScoredRow> {
        if count > keep {
            CandidateSelection<AcceptAllRows>.moveBestToFront(buffer, count: count, best: keep)
            count = keep
        }
        return UnsafeBufferPointer(start: buffer, count: count)
    }
}

extension UnsafeMutablePointer {
    @inline(__always)
    fileprivate func swapAt(_ a: Int, _ b: Int) {
        let t = self[a]
        self[a] = self[b]
        self[b] = t
    }
}

// The graph walks shared by build and query: greedy descent through the upper levels and the beam search of one
// level (Malkov & Yashunin 2018, algorithms 2 and 5). Generic over the scorer (kernel) and the row filter.

/// Greedy descent from `entry` through levels `top` down to `bottom + 1`: at each level, move to the best neighbour
/// until none improves. Returns the best node found (to enter level `bottom`).
@inlinable
func greedyDescend<Scorer: RowScorer>(
    _ layout: HNSWGraphLayout, scorer: Scorer, entry: ScoredRow, from top: Int, downTo bottom: Int,
    scored: inout Int
) -> ScoredRow {
    var current = entry
    var level = top
    while level > bottom {
        var changed = true
        while changed {
            changed = false
            let list = layout.list(current.row, level: level)
            let degree = Int(list[0])
            for slot in 0..<degree {
                let neighbor = list[1 + slot]
                let candidate = ScoredRow(score: scorer.score(neighbor), row: neighbor)
                scored += 1
                if BestOnTop.above(candidate, current) {
                    current = candidate
                    changed = true
                }
            }
        }
        level -= 1
    }
    return current
}

/// Beam search of one level from `entry` with beam width `ef`. Leaves up to `ef` passing rows in
/// `scratch.results` (worst on top). Rows failing `filter` are expanded like any other (so a selective filter does
/// not disconnect the walk) but never enter the results. Stops when the best unexpanded candidate is worse than the
/// worst of `ef` results; with few passing rows it therefore keeps exploring, up to the whole connected graph.
/// `navigationOnly` (level 0 only): follow just each list's navigation prefix (see `HNSWGraphLayout`).
@inlinable
func searchLayer<Scorer: RowScorer, Filter: RowFilter>(
    _ layout: HNSWGraphLayout, level: Int, scorer: Scorer, filter: Filter, entry: ScoredRow, ef: Int,
    scratch: SearchScratch, scored: inout Int, navigationOnly: Bool = false
) {
    let shift: UInt32 = navigationOnly ? layout.navigationShift : 0
    scratch.beginSearch(rowCount: layout.rowCount)
    _ = scratch.visit(entry.row)
    scratch.candidates.push(entry)
    if filter.accepts(entry.row) { scratch.results.push(entry) }
    while !scratch.candidates.isEmpty {
        let current = scratch.candidates.pop()
        if scratch.results.count >= ef && WorstOnTop.above(current, scratch.results.top) { break }
        let list = layout.list(current.row, level: level)
        let degree = Int((UInt32(bitPattern: list[0]) >> shift) & 0xFFFF)
        for slot in 0..<degree {
            let neighbor = list[1 + slot]
            guard scratch.visit(neighbor) else { continue }
            let candidate = ScoredRow(score: scorer.score(neighbor), row: neighbor)
            scored += 1
            let full = scratch.results.count >= ef
            if full && !BestOnTop.above(candidate, scratch.results.top) { continue }
            scratch.candidates.push(candidate)
            guard filter.accepts(neighbor) else { continue }
            if full {
                scratch.results.replaceTop(candidate)
            } else {
                scratch.results.push(candidate)
            }
        }
    }
}

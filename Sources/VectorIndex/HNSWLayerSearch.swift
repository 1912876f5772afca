// The graph walks shared by build and query: greedy descent through the upper levels and the beam search of one
// level (Malkov & Yashunin 2018, algorithms 2 and 5). Generic over the scorer (kernel) and the row filter.

/// Greedy descent from `entry` through levels `top` down to `bottom + 1`: at each level, move to the best neighbour
/// until none improves. Returns the best node found (to enter level `bottom`).
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
            for slot in 0..<degree { scorer.prefetch(list[1 + slot]) }  // loads overlap, as in `searchLayer`
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
/// Returns false when it stopped early because `scored` passed `budget` (the results are then incomplete).
@discardableResult
func searchLayer<Scorer: RowScorer, Filter: RowFilter>(
    _ layout: HNSWGraphLayout, level: Int, scorer: Scorer, filter: Filter, entry: ScoredRow, ef: Int,
    scratch: SearchScratch, scored: inout Int, navigationOnly: Bool = false, budget: Int = .max
) -> Bool {
    let shift: UInt32 = navigationOnly ? layout.navigationShift : 0
    scratch.beginSearch(rowCount: layout.rowCount)
    // The heaps, visited array and generation are used through locals and the heaps stored back at the end:
    // every access to a class's stored `var` is a dynamic exclusivity check (swift_beginAccess, ~5% of a search).
    var candidates = scratch.candidates
    var results = scratch.results
    let visited = scratch.visited
    let generation = scratch.generation
    let pending = scratch.pending
    let pendingScores = scratch.pendingScores
    defer {
        scratch.candidates = candidates
        scratch.results = results
    }
    visited[Int(entry.row)] = generation
    candidates.push(entry)
    if filter.accepts(entry.row) { results.push(entry) }
    while !candidates.isEmpty {
        if scored > budget { return false }
        let current = candidates.pop()
        if results.count >= ef && WorstOnTop.above(current, results.top) { break }
        let list = layout.list(current.row, level: level)
        if !candidates.isEmpty { prefetchLine(layout.list(candidates.top.row, level: level)) }
        let degree = Int((UInt32(bitPattern: list[0]) >> shift) & 0xFFFF)
        // Two passes: collect the unvisited neighbours and prefetch their rows, then score them (in one batch call,
        // so a CPU-dispatched C kernel costs one call per node). The row loads (a cache miss each on a large index)
        // then overlap instead of serialising behind each kernel.
        var fresh = 0
        for slot in 0..<degree {
            let neighbor = list[1 + slot]
            guard visited[Int(neighbor)] != generation else { continue }
            visited[Int(neighbor)] = generation
            scorer.prefetch(neighbor)
            pending[fresh] = neighbor
            fresh += 1
        }
        scorer.scoreBatch(pending, fresh, into: pendingScores)
        for index in 0..<fresh {
            let neighbor = pending[index]
            let candidate = ScoredRow(score: pendingScores[index], row: neighbor)
            scored += 1
            let full = results.count >= ef
            if full && !BestOnTop.above(candidate, results.top) { continue }
            candidates.push(candidate)
            guard filter.accepts(neighbor) else { continue }
            if full {
                results.replaceTop(candidate)
            } else {
                results.push(candidate)
            }
        }
    }
    return true
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Method parameters of the call in progress.
struct MethodParameters {
    enum Kind { case none, mmr, dpp }
    var kind = Kind.none
    /// MMR λ or DPP θ: the weight of relevance.
    var relevanceWeight: Float = 1
    /// 1 − λ or 1 − θ.
    var diversityWeight: Float = 0
    /// DPP: number of recent items each step is conditioned on.
    var window = Int.max

    /// Added to the cosine kernel's diagonal so it stays positive definite beyond `dimension`
    /// picks; an exact duplicate of a chosen item keeps a residual of about `2·jitter`
    /// (log ≈ −6.2), a strong but finite penalty.
    static let jitter: Float = 1e-3
    /// Floor for a residual before its logarithm (rounding can push it to or below zero).
    static let minimumResidual: Float = 1e-6
    /// A residual below this means the item is (nearly) in the span of the conditioning items:
    /// an exact DPP would give it probability zero. Such items rank after every non-redundant one
    /// (they still fill the list once all are redundant, e.g. past `dimension` picks).
    static let redundantResidual: Float = 3 * jitter
    /// Score offset that puts redundant items below every non-redundant one.
    static let redundancyPenalty: Float = 1_000
}

extension RerankScratch {
    func beginDiversity(_ method: DiversityMethod, n: Int) {
        switch method {
        case .none:
            parameters = MethodParameters()
        case .mmr(let lambda):
            parameters = MethodParameters(kind: .mmr, relevanceWeight: lambda, diversityWeight: 1 - lambda)
            maxSimilarity.prepare(count: n, value: -.infinity)
            mostSimilar.prepare(count: n, value: -1)
        case .dpp(let theta, let window):
            parameters = MethodParameters(
                kind: .dpp, relevanceWeight: theta, diversityWeight: 1 - theta, window: window ?? Int.max)
            maxSimilarity.prepare(count: n, value: 1 + MethodParameters.jitter)
            activeColumns.removeAll(keepingCapacity: true)
            freeColumns.removeAll(keepingCapacity: true)
            let columnCount = min(window.map { $0 + 1 } ?? kLimit, kLimit)
            for slot in stride(from: columnCount - 1, through: 0, by: -1) { freeColumns.append(slot) }
        }
    }

    /// Fills positions 0 ..< k: pins where reserved, otherwise the best-scoring eligible item.
    /// Returns why the list stopped early, or nil.
    func fill(_ c: CandidateSet, _ request: RerankRequest) -> Shortfall? {
        let k = request.k
        for p in 0..<k {
            let pinned = slots[p]
            if pinned >= 0 {
                traces[p].score = normalized[Int(pinned)]
                place(c, Int(pinned), position: p, pinned: true)
                continue
            }
            var selected = selectBest(c, position: p, request.rules)
            if selected == nil, releasePins(after: p, c, request.rules) {
                // The pins beyond this point can no longer be reached at their positions; their
                // items (when retrieved) and the room they held under the caps are free again.
                selected = selectBest(c, position: p, request.rules)
            }
            guard let index = selected else {
                for i in 0..<count where state[i] == CandidateState.available { return .blockedByRules }
                return .candidatesExhausted
            }
            slots[p] = Int32(index)
            chargeCaps(c, index, request.rules)
            place(c, index, position: p, pinned: false)
        }
        return nil
    }

    /// Drops every pin after `position` as `.listEndedBeforePosition`, returning its item to the
    /// pool and its room to the caps. Returns whether there was any.
    private func releasePins(after position: Int, _ c: CandidateSet, _ rules: RerankRules) -> Bool {
        var released = false
        for q in (position + 1)..<kLimit where slots[q] >= 0 {
            let index = Int(slots[q])
            slots[q] = -1
            state[index] = c.roles[index] == .pinOnly ? CandidateState.pinOnly : CandidateState.available
            chargeCaps(c, index, rules, by: -1)
            droppedPins.append(DroppedPin(pin: rules.pins[Int(traces[q].pinIndex)], reason: .listEndedBeforePosition))
            traces[q].pinIndex = -1
            released = true
        }
        return released
    }

    /// The selection score of candidate `i`. For DPP it may return any value below `threshold`
    /// instead of the exact score when an upper bound already loses (log x ≤ x − 1), which skips
    /// most logarithms.
    @inline(__always)
    private func score(_ i: Int, beating threshold: Float) -> Float {
        switch parameters.kind {
        case .none:
            return normalized[i]
        case .mmr:
            let penalty = chosenCount == 0 ? 0 : parameters.diversityWeight * maxSimilarity[i]
            return parameters.relevanceWeight * normalized[i] - penalty
        case .dpp:
            let relevance = parameters.relevanceWeight * normalized[i]
            guard parameters.diversityWeight > 0 else { return relevance }
            let residual = max(maxSimilarity[i], MethodParameters.minimumResidual)
            let base =
                residual < MethodParameters.redundantResidual ? relevance - MethodParameters.redundancyPenalty : relevance
            let bound = base + parameters.diversityWeight * (residual - 1)
            if bound < threshold { return bound }
            return base + parameters.diversityWeight * logf(residual)
        }
    }

    /// The eligible candidate with the highest score (ties: lower row), or nil when none is left.
    /// Records in `traces[position]` what the explanation needs.
    private func selectBest(_ c: CandidateSet, position p: Int, _ rules: RerankRules) -> Int? {
        let spreadActive = rules.spread != nil
        if let spread = rules.spread { collectSpreadBlocked(c, position: p, spread) }
        let categoryCap = Int32(clamping: rules.maxPerCategory ?? Int(Int32.max))
        let brandCap = Int32(clamping: rules.maxPerBrand ?? Int(Int32.max))
        var best = -1
        var bestScore = -Float.infinity
        var bestRow = Int32.max
        var relevant = -1
        var relevantScore = -Float.infinity
        var relevantRow = Int32.max
        var blocked = -1
        var blockedScore = -Float.infinity
        var blockedRow = Int32.max
        var blockedRule: BlockingRule? = nil
        for i in 0..<count where state[i] == CandidateState.available {
            let row = c.rows[i]
            var rule: BlockingRule? = nil
            if categoryCount[i] >= categoryCap {
                rule = .categoryCap(category: c.categories[i], limit: Int(categoryCap))
            } else if brandCount[i] >= brandCap {
                rule = .brandCap(brand: c.brands[i], limit: Int(brandCap))
            } else if spreadActive, blockedCategories.contains(c.categories[i]), let spread = rules.spread {
                rule = .spread(category: c.categories[i], maxPerWindow: spread.maxPerWindow, window: spread.window)
            }
            if let rule {
                let s = score(i, beating: blockedScore)
                if s > blockedScore || (s == blockedScore && row < blockedRow) {
                    (blocked, blockedScore, blockedRow, blockedRule) = (i, s, row, rule)
                }
                continue
            }
            let s = score(i, beating: bestScore)
            if s > bestScore || (s == bestScore && row < bestRow) {
                (best, bestScore, bestRow) = (i, s, row)
            }
            let r = normalized[i]
            if r > relevantScore || (r == relevantScore && row < relevantRow) {
                (relevant, relevantScore, relevantRow) = (i, r, row)
            }
        }
        guard best >= 0 else { return nil }
        var trace = traces[p]
        trace.score = bestScore
        trace.mostRelevant = Int32(relevant)
        trace.blocked = Int32(blocked)
        trace.blockedScore = blockedScore
        trace.blockedRule = blockedRule
        switch parameters.kind {
        case .none: break
        case .mmr:
            trace.similarity = chosenCount == 0 ? 0 : maxSimilarity[best]
            trace.mostSimilar = chosenCount == 0 ? -1 : mostSimilar[best]
        case .dpp:
            trace.similarity = maxSimilarity[best]
        }
        traces[p] = trace
        return best
    }

    /// The categories that the spread rule forbids at `position`, into `blockedCategories`.
    private func collectSpreadBlocked(_ c: CandidateSet, position p: Int, _ spread: SpreadRule) {
        blockedCategories.removeAll(keepingCapacity: true)
        let low = max(0, p - spread.window + 1)
        let high = min(kLimit - 1, p + spread.window - 1)
        for q in low...high where q != p && slots[q] >= 0 {
            let category = c.categories[Int(slots[q])]
            if !blockedCategories.contains(category), spreadBlocks(c, category, at: p, spread) {
                blockedCategories.append(category)
            }
        }
    }

    /// Appends candidate `index` at `position` and updates the diversity state.
    private func place(_ c: CandidateSet, _ index: Int, position p: Int, pinned: Bool) {
        ranked.append(
            RankedItem(row: c.rows[index], candidateIndex: Int32(index), score: traces[p].score, isPinned: pinned))
        state[index] = CandidateState.placed
        // A row supplied twice must not appear twice.
        let row = c.rows[index]
        for i in 0..<count where c.rows[i] == row && state[i] == CandidateState.available {
            state[i] = CandidateState.placed
        }
        switch parameters.kind {
        case .none: break
        case .mmr: updateMaxSimilarity(chosen: index)
        case .dpp: extendCholesky(chosen: index)
        }
        chosenCount += 1
    }

    private func updateMaxSimilarity(chosen s: Int) {
        let d = dimension
        guard let vectors = vectorBase else { return }
        let chosen = vectors + s * d
        for i in 0..<count where state[i] == CandidateState.available {
            let similarity = VectorKernels.dot(vectors + i * d, chosen, count: d)
            if similarity > maxSimilarity[i] {
                maxSimilarity[i] = similarity
                mostSimilar[i] = Int32(s)
            }
        }
    }

    /// Adds item `s` to the conditioning set: one new column of the incremental Cholesky factor
    /// (Chen et al. 2018, Algorithm 1) over all candidates, `residual[i] −= e[i]²`. With a window,
    /// then drops the oldest column.
    private func extendCholesky(chosen s: Int) {
        let n = count
        let d = dimension
        guard let vectors = vectorBase, let slot = freeColumns.popLast() else { return }
        let column = columns.base + slot * n
        let chosen = vectors + s * d
        for i in 0..<n {
            let st = state[i]
            // Only rows that can still be chosen (or pinned later) need values; chosen items'
            // rows in newer columns are exactly zero (the factor is lower triangular).
            column[i] =
                st == CandidateState.available || st == CandidateState.pinReserved
                ? VectorKernels.dot(vectors + i * d, chosen, count: d) : 0
        }
        column[s] = 1 + MethodParameters.jitter
        for older in activeColumns {
            let previous = columns.base + older * n
            VectorKernels.subtractScaled(previous, times: previous[s], from: column, count: n)
        }
        let residual = maxSimilarity
        let pivot = max(residual[s], MethodParameters.minimumResidual).squareRoot()
        let inverse = 1 / pivot
        for i in 0..<n { column[i] *= inverse }
        for older in activeColumns { column[Int(columnItem[older])] = 0 }
        column[s] = pivot
        for i in 0..<n { residual[i] -= column[i] * column[i] }
        columnItem[slot] = Int32(s)
        activeColumns.append(slot)
        if activeColumns.count > parameters.window { dropOldestColumn() }
    }

    /// Removes the oldest item from the conditioning set (Chen et al. 2018, sliding window): the
    /// Givens rotations that re-triangularise the factor without it are applied to every row, and
    /// the rotated-out column's squares go back into the residuals. O(window · n).
    private func dropOldestColumn() {
        let n = count
        let oldest = activeColumns.removeFirst()
        let removed = columns.base + oldest * n
        for slot in activeColumns {
            let item = Int(columnItem[slot])
            let column = columns.base + slot * n
            let a = column[item]
            let b = removed[item]
            if b == 0 { continue }
            let rho = (a * a + b * b).squareRoot()
            VectorKernels.rotate(column, removed, c: a / rho, s: b / rho, count: n)
            column[item] = rho
            removed[item] = 0
        }
        let residual = maxSimilarity
        for i in 0..<n { residual[i] += removed[i] * removed[i] }
        freeColumns.append(oldest)
    }
}

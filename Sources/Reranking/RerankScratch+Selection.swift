#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Method parameters of the call in progress.
struct MethodParameters {
    enum Kind {
        case none
        case mmr
        /// Full DPP, evaluated lazily (residuals only shrink).
        case dpp
        /// Sliding-window DPP, evaluated eagerly (residuals grow when items leave the window).
        case windowedDPP
    }

    var kind = Kind.none
    /// MMR λ or DPP θ: the weight of relevance.
    var relevanceWeight: Float = 1
    /// 1 − λ or 1 − θ.
    var diversityWeight: Float = 0
    /// Windowed DPP: number of recent items each step is conditioned on.
    var window = Int.max

    /// Added to the cosine kernel's diagonal so it stays positive definite beyond `dimension`
    /// picks; an exact duplicate of a chosen item keeps a residual of about `2·jitter`.
    static let jitter: Float = 1e-3
    /// Floor for a residual before its logarithm (rounding can push it to or below zero).
    static let minimumResidual: Float = 1e-6
    /// A residual below this means the item is (nearly) in the span of the conditioning items:
    /// an exact DPP would give it probability zero. Such items rank after every non-redundant one
    /// (they still fill the list once all are redundant, e.g. past `dimension` picks).
    static let redundantResidual: Float = 3 * jitter
    /// Score offset that puts redundant items below every non-redundant one.
    static let redundancyPenalty: Float = 1_000

    /// Columns of the Cholesky factor a DPP call needs: k for the full method (one per chosen
    /// item), window + 1 slots for the sliding window (which never holds more).
    static func factorWidth(_ method: DiversityMethod, k: Int) -> Int {
        guard case .dpp(_, let window) = method else { return 0 }
        guard let window, window + 1 < k else { return k }
        return window + 1
    }

    /// The DPP step score for a residual: `θ·rel + (1−θ)·log d²`, redundant items last.
    @inline(__always)
    func dppScore(relevance: Float, residual: Float) -> Float {
        let weighted = relevanceWeight * relevance
        guard diversityWeight > 0 else { return weighted }
        let r = max(residual, Self.minimumResidual)
        let base = r < Self.redundantResidual ? weighted - Self.redundancyPenalty : weighted
        return base + diversityWeight * logf(r)
    }
}

extension RerankScratch {
    /// Sets the method parameters, the relevance order and every candidate's initial score.
    func beginDiversity(_ c: CandidateSet, _ method: DiversityMethod) {
        let n = c.count
        switch method {
        case .none:
            parameters = MethodParameters()
        case .mmr(let lambda):
            parameters = MethodParameters(kind: .mmr, relevanceWeight: lambda, diversityWeight: 1 - lambda)
            maxSimilarity.prepare(count: n, value: -.infinity)
            mostSimilar.prepare(count: n, value: -1)
        case .dpp(let theta, let window):
            let windowed = factorWidth < kLimit
            parameters = MethodParameters(
                kind: windowed ? .windowedDPP : .dpp, relevanceWeight: theta, diversityWeight: 1 - theta,
                window: windowed ? window ?? Int.max : Int.max)
            residual.prepare(count: n, value: 1 + MethodParameters.jitter)
            if windowed {
                // The eager update takes dot products over whole factor rows: unused slots must be 0.
                factor.prepare(count: n * factorWidth, value: 0)
                activeColumns.removeAll(keepingCapacity: true)
                freeColumns.removeAll(keepingCapacity: true)
                for slot in stride(from: factorWidth - 1, through: 0, by: -1) { freeColumns.append(slot) }
            }
        }
        seen.prepare(count: n, value: 0)
        // Locals: stored properties of a class pay a dynamic exclusivity check per access.
        let (parameters, normalized, cachedScore, keys) = (parameters, normalized, cachedScore, sortKeys)
        let initialResidual = 1 + MethodParameters.jitter
        for i in 0..<n {
            switch parameters.kind {
            case .none: cachedScore[i] = normalized[i]
            case .mmr: cachedScore[i] = parameters.relevanceWeight * normalized[i]
            case .dpp, .windowedDPP:
                cachedScore[i] = parameters.dppScore(relevance: normalized[i], residual: initialResidual)
            }
            // Decreasing relevance, then index: for a non-negative Float the bit pattern orders
            // like the value. Equal relevance is settled by row where it matters (selectBest).
            let bits = UInt64(max(normalized[i], 0).bitPattern)
            keys[i] = (UInt64(UInt32.max) - bits) << 32 | UInt64(i)
        }
        heapSort(keys.base, count: n)
        let order = order
        for o in 0..<n { order[o] = Int32(truncatingIfNeeded: keys[o]) }
    }

    /// Fills positions 0 ..< k: pins where reserved, otherwise the best-scoring eligible item.
    /// Returns why the list stopped early, or nil. `tracking` records, for explanations, the best
    /// item a rule held back at each position.
    func fill(_ c: CandidateSet, _ request: RerankRequest, tracking: Bool) -> Shortfall? {
        let k = request.k
        for p in 0..<k {
            let pinned = slots[p]
            if pinned >= 0 {
                let index = Int(pinned)
                refresh(index)
                traces[p].score = normalized[index]
                recordDiversity(index, position: p)
                place(c, index, position: p, pinned: true)
                continue
            }
            var selected = selectBest(c, position: p, request.rules, tracking: tracking)
            if selected == nil, releasePins(after: p, c, request.rules) {
                // The pins beyond this point can no longer be reached at their positions; their
                // items (when retrieved) and the room they held under the caps are free again.
                selected = selectBest(c, position: p, request.rules, tracking: tracking)
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

    /// Candidate `i`'s exact current score.
    @inline(__always)
    private func exactScore(_ i: Int) -> Float {
        switch parameters.kind {
        case .none: return normalized[i]
        case .mmr, .dpp:
            refresh(i)
            return cachedScore[i]
        case .windowedDPP:
            return parameters.dppScore(relevance: normalized[i], residual: residual[i])
        }
    }

    /// The eligible candidate with the highest score (ties: lower row), or nil when none is left.
    /// Visits candidates in relevance order and skips those whose upper bound cannot win, so most
    /// are never re-scored. Records in `traces[position]` what the explanation needs.
    private func selectBest(_ c: CandidateSet, position p: Int, _ rules: RerankRules, tracking: Bool) -> Int? {
        let spreadActive = rules.spread != nil
        if let spread = rules.spread { collectSpreadBlocked(c, position: p, spread) }
        let categoryCap = Int32(clamping: rules.maxPerCategory ?? Int(Int32.max))
        let brandCap = Int32(clamping: rules.maxPerBrand ?? Int(Int32.max))
        let (state, order, normalized, categoryCount, brandCount) = (
            state, order, normalized, categoryCount, brandCount
        )
        let (seen, cachedScore, residual, parameters) = (seen, cachedScore, residual, parameters)
        let blockedCategories = blockedCategories
        let (rows, categories) = (c.rows, c.categories)
        /// The highest score a candidate could have given its relevance alone; candidates are
        /// visited in relevance order, so once this loses, every later one loses too.
        @inline(__always) func relevanceBound(_ relevance: Float) -> Float {
            switch parameters.kind {
            case .none: return relevance
            // A cosine is ≥ −1, so the MMR penalty is ≥ −(1−λ).
            case .mmr: return parameters.relevanceWeight * relevance + parameters.diversityWeight
            case .dpp, .windowedDPP:
                return parameters.dppScore(relevance: relevance, residual: 1 + MethodParameters.jitter)
            }
        }
        /// An upper bound on candidate `i`'s current score: the cached score for the lazy
        /// methods, and `log x ≤ x − 1` for the windowed DPP, whose residuals are current.
        @inline(__always) func upperBound(_ i: Int) -> Float {
            switch parameters.kind {
            case .none: return normalized[i]
            case .mmr:
                // The penalty over an empty list is 0, but a first similarity can be negative:
                // only from the first refresh on does the cached score only fall.
                return seen[i] == 0 ? relevanceBound(normalized[i]) : cachedScore[i]
            case .dpp: return cachedScore[i]
            case .windowedDPP:
                guard parameters.diversityWeight > 0 else { return parameters.relevanceWeight * normalized[i] }
                let r = max(residual[i], MethodParameters.minimumResidual)
                let weighted = parameters.relevanceWeight * normalized[i]
                let base =
                    r < MethodParameters.redundantResidual ? weighted - MethodParameters.redundancyPenalty : weighted
                return base + parameters.diversityWeight * (r - 1)
            }
        }
        var best = -1
        var bestScore = -Float.infinity
        var bestRow = Int32.max
        var relevant = -1
        var blocked = -1
        var blockedScore = -Float.infinity
        var blockedRow = Int32.max
        var blockedRule: BlockingRule? = nil
        for o in 0..<count {
            let i = Int(order[o])
            guard state[i] == CandidateState.available else { continue }
            let floor = tracking ? min(bestScore, blockedScore) : bestScore
            if relevanceBound(normalized[i]) < floor { break }
            let row = rows[i]
            var rule: BlockingRule? = nil
            if categoryCount[i] >= categoryCap {
                rule = .categoryCap(category: categories[i], limit: Int(categoryCap))
            } else if brandCount[i] >= brandCap {
                rule = .brandCap(brand: c.brands[i], limit: Int(brandCap))
            } else if spreadActive, blockedCategories.contains(categories[i]), let spread = rules.spread {
                rule = .spread(category: categories[i], maxPerWindow: spread.maxPerWindow, window: spread.window)
            }
            if let rule {
                guard tracking else { continue }
                let bound = upperBound(i)
                if bound < blockedScore || (bound == blockedScore && row > blockedRow) { continue }
                let s = exactScore(i)
                if s > blockedScore || (s == blockedScore && row < blockedRow) {
                    (blocked, blockedScore, blockedRow, blockedRule) = (i, s, row, rule)
                }
                continue
            }
            if relevant < 0 || (normalized[i] == normalized[relevant] && row < rows[relevant]) { relevant = i }
            let bound = upperBound(i)
            if bound < bestScore || (bound == bestScore && row > bestRow) { continue }
            let s = exactScore(i)
            if s > bestScore || (s == bestScore && row < bestRow) {
                (best, bestScore, bestRow) = (i, s, row)
            }
        }
        guard best >= 0 else { return nil }
        traces[p].score = bestScore
        traces[p].mostRelevant = Int32(relevant)
        traces[p].blocked = Int32(blocked)
        traces[p].blockedScore = blockedScore
        traces[p].blockedRule = blockedRule
        recordDiversity(best, position: p)
        return best
    }

    private func recordDiversity(_ index: Int, position p: Int) {
        switch parameters.kind {
        case .none: break
        case .mmr:
            traces[p].similarity = chosenCount == 0 ? 0 : maxSimilarity[index]
            traces[p].mostSimilar = chosenCount == 0 ? -1 : mostSimilar[index]
        case .dpp, .windowedDPP:
            traces[p].similarity = residual[index]
        }
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

    /// Appends candidate `index` at `position` and adds it to the diversity state.
    private func place(_ c: CandidateSet, _ index: Int, position p: Int, pinned: Bool) {
        ranked.append(
            RankedItem(row: c.rows[index], candidateIndex: Int32(index), score: traces[p].score, isPinned: pinned))
        let state = state
        state[index] = CandidateState.placed
        // A row supplied twice must not appear twice.
        let row = c.rows[index]
        let rows = c.rows
        for i in 0..<count where rows[i] == row && state[i] == CandidateState.available {
            state[i] = CandidateState.placed
        }
        switch parameters.kind {
        case .none, .mmr: break
        case .dpp: appendPivot(chosen: index)
        case .windowedDPP: extendWindowedFactor(chosen: index)
        }
        chosenItems[chosenCount] = Int32(index)
        chosenCount += 1
    }
}

import Glibc

/// Method parameters of the call in progress.
struct MethodParameters {
    enum Kind {
        case none
        case mmr
        /// Full DPP, evaluated lazily eight candidates at a time (`SelectionState+DPP.swift`).
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

    /// `(1−θ)·log d²` for an item conditioned on nothing (d² = 1 + jitter): the DPP score of an
    /// item is at most `θ·rel` plus this. Computed once per call rather than once per visit.
    var freshDiversityTerm: Float {
        diversityWeight > 0 ? diversityWeight * logf(1 + Self.jitter) : 0
    }

    /// The DPP step score for a residual: `θ·rel + (1−θ)·log d²`, redundant items last.
    @inline(__always)
    func dppScore(relevance: Float, residual: Float) -> Float {
        let weighted = relevanceWeight * relevance
        guard diversityWeight > 0 else { return weighted }
        let r = max(residual, Self.minimumResidual)
        return dppScore(weighted: weighted, flooredResidual: r, log: logf(r))
    }

    /// `dppScore` from its parts, for a caller that keeps the logarithm (diversity weight > 0).
    @inline(__always)
    func dppScore(weighted: Float, flooredResidual r: Float, log: Float) -> Float {
        let base = r < Self.redundantResidual ? weighted - Self.redundancyPenalty : weighted
        return base + diversityWeight * log
    }
}

extension Reranker {
    /// Sets the method parameters, the sort keys of the relevance order and every candidate's
    /// initial score. O(n).
    func beginDiversity(_ c: CandidateSet, _ method: DiversityMethod) {
        let n = c.count
        switch method {
        case .none:
            parameters = MethodParameters()
        case .mmr(let lambda):
            parameters = MethodParameters(kind: .mmr, relevanceWeight: lambda, diversityWeight: 1 - lambda)
            mmr.maxSimilarity.prepare(count: n, value: -.infinity)
            mmr.mostSimilar.prepare(count: n, value: -1)
        case .dpp(let theta, let window):
            let windowed = factorWidth < kLimit
            parameters = MethodParameters(
                kind: windowed ? .windowedDPP : .dpp, relevanceWeight: theta, diversityWeight: 1 - theta,
                window: windowed ? window ?? Int.max : Int.max)
            dpp.residual.prepare(count: Self.padded(n), value: 1 + MethodParameters.jitter)
            if windowed {
                // The eager update takes dot products over whole factor rows: unused slots must be 0.
                dpp.factor.prepare(count: n * factorWidth, value: 0)
                dpp.activeColumns.removeAll(keepingCapacity: true)
                dpp.freeColumns.removeAll(keepingCapacity: true)
                for slot in stride(from: factorWidth - 1, through: 0, by: -1) { dpp.freeColumns.append(slot) }
            } else {
                // Blocks are filled and brought up to date on first use (`catchUp`).
                let n8 = Self.padded(n)
                dpp.vectorBlocks.reserve(n8 * c.dimension)
                dpp.blockColumns.prepare(count: n8 / 8, value: -1)
            }
        }
        perCandidate.seen.prepare(count: n, value: 0)
        // Locals: stored properties of a class pay a dynamic exclusivity check per access.
        let (parameters, normalized, cachedScore, keys) =
            (parameters, perCandidate.normalized, perCandidate.cachedScore, ordering.sortKeys)
        // Every candidate starts with the residual 1 + jitter: one logarithm for all of them.
        let freshTerm = parameters.freshDiversityTerm
        for i in 0..<n {
            switch parameters.kind {
            case .none: cachedScore[i] = normalized[i]
            case .mmr: cachedScore[i] = parameters.relevanceWeight * normalized[i]
            case .dpp, .windowedDPP: cachedScore[i] = parameters.relevanceWeight * normalized[i] + freshTerm
            }
            // Decreasing relevance, then index: for a non-negative Float the bit pattern orders
            // like the value. Equal relevance is settled by row where it matters (the scan).
            let bits = UInt64(max(normalized[i], 0).bitPattern)
            keys[i] = (UInt64(UInt32.max) - bits) << 32 | UInt64(i)
        }
    }

    /// Fills positions 0 ..< k: pins where reserved, otherwise the best-scoring eligible item.
    /// Returns why the list stopped early, or nil. `tracking` records, for explanations, the best
    /// item a rule held back at each position.
    func fill(_ c: CandidateSet, _ request: RerankRequest, tracking: Bool, _ s: inout SelectionState) -> Shortfall? {
        let k = request.k
        let (slots, traces, normalized) = (positions.slots, positions.traces, perCandidate.normalized)
        for p in 0..<k {
            let pinned = slots[p]
            if pinned >= 0 {
                let index = Int(pinned)
                s.refresh(index)
                traces[p].score = normalized[index]
                recordDiversity(s, index, position: p)
                place(&s, index, position: p, pinned: true)
                continue
            }
            var selected = selectBest(&s, c, position: p, request.rules, tracking: tracking)
            if selected == nil, releasePins(after: p, c, request.rules, &s) {
                // The pins beyond this point can no longer be reached at their positions; their
                // items (when retrieved) and the room they held under the caps are free again.
                selected = selectBest(&s, c, position: p, request.rules, tracking: tracking)
            }
            guard let index = selected else {
                for i in 0..<count where s.state[i] == CandidateState.available { return .blockedByRules }
                return .candidatesExhausted
            }
            slots[p] = Int32(index)
            s.chargeCaps(index)
            place(&s, index, position: p, pinned: false)
        }
        return nil
    }

    /// Drops every pin after `position` as `.listEndedBeforePosition`, returning its item to the
    /// pool and its room to the caps. Returns whether there was any.
    private func releasePins(
        after position: Int, _ c: CandidateSet, _ rules: RerankRules, _ s: inout SelectionState
    ) -> Bool {
        var released = false
        let (slots, traces) = (positions.slots, positions.traces)
        for q in (position + 1)..<kLimit where slots[q] >= 0 {
            let index = Int(slots[q])
            slots[q] = -1
            s.state[index] = c.roles[index] == .pinOnly ? CandidateState.pinOnly : CandidateState.available
            s.chargeCaps(index, by: -1)
            droppedPins.append(DroppedPin(pin: rules.pins[Int(traces[q].pinIndex)], reason: .listEndedBeforePosition))
            traces[q].pinIndex = -1
            released = true
        }
        // Released items and items under a cap that has room again were unlinked from the order.
        if released {
            s.order.relinkAll()
            s.treeReady = false
            s.laneWeightReady = false
        }
        return released
    }

    /// The eligible candidate with the highest score (ties: lower row), or nil when none is left.
    /// Records in `traces[position]` what the explanation needs.
    private func selectBest(
        _ s: inout SelectionState, _ c: CandidateSet, position p: Int, _ rules: RerankRules, tracking: Bool
    ) -> Int? {
        if let spread = rules.spread { markSpreadBlocked(&s, position: p, spread) }
        let pick: SelectionState.Pick
        if s.usesTree(tracking: tracking) {
            pick = s.pickFromTree(spreadActive: rules.spread != nil)
        } else if s.usesBlockBounds(tracking: tracking) {
            pick = s.pickByBounds(spreadActive: rules.spread != nil)
        } else {
            pick = s.scan(c, rules, tracking: tracking)
        }
        guard pick.best >= 0 else { return nil }
        let traces = positions.traces
        traces[p].score = pick.bestScore
        traces[p].mostRelevant = Int32(pick.relevant)
        traces[p].blocked = Int32(pick.blocked)
        traces[p].blockedScore = pick.blockedScore
        traces[p].blockedRule = pick.blockedRule
        recordDiversity(s, pick.best, position: p)
        return pick.best
    }

    private func recordDiversity(_ s: SelectionState, _ index: Int, position p: Int) {
        let traces = positions.traces
        switch parameters.kind {
        case .none: break
        case .mmr:
            traces[p].similarity = s.chosenCount == 0 ? 0 : s.maxSimilarity[index]
            traces[p].mostSimilar = s.chosenCount == 0 ? -1 : s.mostSimilar[index]
        case .dpp, .windowedDPP:
            traces[p].similarity = s.residual[index]
        }
    }

    /// Marks the category slots that the spread rule forbids at `position` (`spreadMark` equal to
    /// the new `spreadEpoch`). O(window²).
    private func markSpreadBlocked(_ s: inout SelectionState, position p: Int, _ spread: SpreadRule) {
        s.spreadEpoch &+= 1
        let low = max(0, p - spread.window + 1)
        let high = min(kLimit - 1, p + spread.window - 1)
        let slots = positions.slots
        for q in low...high where q != p && slots[q] >= 0 {
            let category = s.categorySlot[Int(slots[q])]
            if s.spreadMark[Int(category)] != s.spreadEpoch, spreadBlocks(s, category, at: p, spread) {
                s.spreadMark[Int(category)] = s.spreadEpoch
            }
        }
    }

    /// Appends candidate `index` at `position` and adds it to the diversity state.
    private func place(_ s: inout SelectionState, _ index: Int, position p: Int, pinned: Bool) {
        ranked.append(
            RankedItem(
                row: s.rows[index], candidateIndex: Int32(index), score: positions.traces[p].score, isPinned: pinned))
        s.state[index] = CandidateState.placed
        if hasDuplicateRows {
            // A row supplied twice must not appear twice.
            let row = s.rows[index]
            for i in 0..<count where s.rows[i] == row && s.state[i] == CandidateState.available {
                s.state[i] = CandidateState.placed
            }
        }
        switch parameters.kind {
        case .none, .mmr: break
        case .dpp:
            s.retire(placed: index)
            s.appendColumn(chosen: index)
        case .windowedDPP: extendWindowedFactor(s, chosen: index)
        }
        s.chosenItems[s.chosenCount] = Int32(index)
        s.chosenCount += 1
    }
}

/// Candidate states during one call.
enum CandidateState {
    static let available: UInt8 = 0
    static let excluded: UInt8 = 1
    static let placed: UInt8 = 2
    /// A valid pin waiting for its position.
    static let pinReserved: UInt8 = 3
    /// Supplied for a pin that was not requested or was dropped.
    static let pinOnly: UInt8 = 4
}

/// What one position recorded while it was filled; explanations are built from it afterwards.
struct PositionTrace {
    var score: Float = 0
    /// MMR: largest cosine to an earlier item. DPP: residual d² at selection.
    var similarity: Float = 0
    var mostSimilar: Int32 = -1
    /// The most relevant eligible candidate at this step.
    var mostRelevant: Int32 = -1
    /// The best-scoring candidate a rule held back, and the rule.
    var blocked: Int32 = -1
    var blockedScore: Float = -.infinity
    var blockedRule: BlockingRule? = nil
    var pinIndex: Int32 = -1
}

/// The re-ranker: MMR / DPP diversification under exclusions, caps, a spread rule, boosts and
/// pins, over memory it keeps between calls. See docs/RERANKING.md.
///
/// Keep one per event loop (or thread) and call `rerank` for each request. After the first calls
/// have grown the buffers to the largest request seen, a call with `explain == nil` performs no
/// heap allocation. The results live in `ranked`, `droppedPins` and `explanations` until the next
/// call; copy what must outlive it.
///
/// Not thread-safe: one caller at a time.
public final class Reranker {
    /// The list of the last call, in order (position = index).
    public internal(set) var ranked: [RankedItem] = []
    /// Pins of the last call that are not in the list, with the reason.
    public internal(set) var droppedPins: [DroppedPin] = []
    /// One per `ranked` item when the last call asked for explanations, else empty.
    public internal(set) var explanations: [RerankExplanation] = []

    // Reusable memory, one group per concern (Reranker+Memory.swift).
    var perCandidate = CandidateMemory()
    var ordering = OrderMemory()
    var mmr = MMRMemory()
    var dpp: DPPMemory
    var ruleMemory = RuleMemory()
    var positions = PositionMemory()

    // The call in progress.
    var count = 0
    var dimension = 0
    var kLimit = 0
    var parameters = MethodParameters()
    /// Columns of the DPP factor this call uses (0 unless DPP).
    var factorWidth = 0
    /// Whether some row is supplied twice (placing it must then retire its twin).
    var hasDuplicateRows = false

    /// Creates a re-ranker whose memory is sized for `candidates` items and lists of `k`; larger
    /// calls grow it once.
    public init(candidates: Int = 512, k: Int = 100) {
        ranked.reserveCapacity(k)
        droppedPins.reserveCapacity(8)
        dpp = DPPMemory(k: k)
        reserve(candidates: candidates, k: k, columns: 0)
    }

    deinit {
        perCandidate.free()
        ordering.free()
        mmr.free()
        dpp.free()
        ruleMemory.free()
        positions.free()
    }

    private func reserve(candidates n: Int, k: Int, columns: Int) {
        perCandidate.reserve(candidates: n)
        ordering.reserve(candidates: n)
        mmr.reserve(candidates: n)
        dpp.reserve(candidates: n, columns: columns)
        ruleMemory.reserve(candidates: n)
        positions.reserve(k: k)
    }

    /// Re-ranks `candidates` into at most `request.k` items.
    ///
    /// Results: `ranked` (the list), `droppedPins`, and `explanations` when `explain` is given.
    /// Every hard exclusion, cap and the spread rule hold for every item, pins included; valid pins
    /// sit at their exact positions. When the rules leave fewer than k eligible items the list is
    /// shorter and the outcome says why.
    ///
    /// - Parameters:
    ///   - candidates: the items; `.pinOnly` ones appear only where pinned.
    ///   - request: k, method, rules and the current time.
    ///   - explain: names and query origin for human reasons; `nil` (the fast path) skips them.
    /// - Throws: `RerankError` for an out-of-range parameter or a non-finite relevance.
    /// - Complexity: O(n + k·log n) for the order and rules (candidates are sorted only as far as
    ///   the selection looks) plus O(k·n) scanning at worst, and for MMR and DPP at most O(k·n·d)
    ///   (plus O(k²·n) for DPP) — usually far less, as candidates that cannot win a position are
    ///   not re-scored; with a DPP window every step costs O(n·(d + w)). n = candidates,
    ///   d = dimension.
    @discardableResult
    public func rerank(
        _ candidates: CandidateSet, _ request: RerankRequest, explain: ExplanationContext? = nil
    ) throws(RerankError) -> RerankOutcome {
        try request.validate()
        let nonFinite = candidates.relevance.withUnsafeBufferPointer { $0.firstIndex { !$0.isFinite } }
        if let nonFinite { throw .nonFiniteRelevance(row: candidates.rows[nonFinite]) }
        ranked.removeAll(keepingCapacity: true)
        droppedPins.removeAll(keepingCapacity: true)
        explanations.removeAll(keepingCapacity: true)
        let n = candidates.count
        let k = request.k
        count = n
        kLimit = k
        factorWidth = MethodParameters.factorWidth(request.method, k: k)
        reserve(candidates: n, k: k, columns: factorWidth)

        prepareRules(request.rules)
        classifyAndBoost(candidates, request)
        beginDiversity(candidates, request.method)
        let shortfall = candidates.vectors.withUnsafeBufferPointer { vectors in
            var selection = selectionState(vectors: vectors.baseAddress, request.rules)
            reservePins(candidates, request.rules, k: k, &selection)
            return fill(candidates, request, tracking: explain != nil, &selection)
        }
        if let explain {
            buildExplanations(candidates, request, context: explain)
        }
        return RerankOutcome(count: ranked.count, shortfall: shortfall, droppedPinCount: droppedPins.count)
    }

    /// Pointer views of the call's buffers; heapifies the relevance order. O(n).
    private func selectionState(vectors: UnsafePointer<Float>?, _ rules: RerankRules) -> SelectionState {
        let freshOffset: Float
        switch parameters.kind {
        case .none: freshOffset = 0
        // A cosine is ≥ −1, so the MMR penalty is ≥ −(1−λ).
        case .mmr: freshOffset = parameters.diversityWeight
        // θ·rel + (1−θ)·log d² with the residual of an item conditioned on nothing.
        case .dpp, .windowedDPP: freshOffset = parameters.freshDiversityTerm
        }
        let (c, o, d) = (perCandidate, ordering, dpp)
        return SelectionState(
            count: count, dimension: dimension, factorWidth: factorWidth, paddedCount: Self.padded(count),
            parameters: parameters, vectors: vectors, vectorBlocks: d.vectorBlocks.base,
            blockColumns: d.blockColumns.base, rows: c.rows.base, state: c.state.base, normalized: c.normalized.base,
            categorySlot: c.categorySlot.base, brandSlot: c.brandSlot.base, seen: c.seen.base,
            cachedScore: c.cachedScore.base, maxSimilarity: mmr.maxSimilarity.base, mostSimilar: mmr.mostSimilar.base,
            residual: d.residual.base, factor: d.factor.base, pivots: d.pivots.base, chosenRows: d.chosenRows.base,
            laneWeight: d.laneWeight.base, laneBound: d.laneBound.base, laneLog: d.laneLog.base,
            laneScale: d.laneScale.base, blockBound: d.blockBound.base, chosenItems: positions.chosenItems.base,
            categoryUsed: ruleMemory.categoryUsed.base, brandUsed: ruleMemory.brandUsed.base,
            spreadMark: ruleMemory.spreadMark.base,
            categoryCap: Int32(clamping: rules.maxPerCategory ?? Int(Int32.max)),
            brandCap: Int32(clamping: rules.maxPerBrand ?? Int(Int32.max)),
            order: RelevanceOrder(keys: o.sortKeys.base, order: o.order.base, next: o.orderNext.base, count: count),
            tree: BoundTree(
                keys: o.treeKeys.base, winners: o.treeWinner.base, bound: o.treeBound.base, rows: c.rows.base),
            distinctRows: !hasDuplicateRows,
            hidden: c.hidden.base,
            freshOffset: freshOffset)
    }

    // MARK: Rules

    private func prepareRules(_ rules: RerankRules) {
        func sortedCopy(_ source: [Int32], into target: inout [Int32]) {
            target.removeAll(keepingCapacity: true)
            target.append(contentsOf: source)
            sortInPlace(&target)
        }
        sortedCopy(rules.excludedRows, into: &ruleMemory.excludedRows)
        sortedCopy(rules.deniedCategories, into: &ruleMemory.deniedCategories)
        sortedCopy(rules.deniedBrands, into: &ruleMemory.deniedBrands)
    }

    /// The hard exclusions of the call, over the sorted rule lists (copied by reference).
    struct Exclusions {
        var rows: [Int32]
        var categories: [Int32]
        var brands: [Int32]
        var outOfStock: Bool

        @inline(__always)
        func reason(_ c: CandidateSet, _ i: Int) -> ExclusionReason? {
            if !rows.isEmpty, sortedContains(rows, c.rows[i]) { return .excludedItem }
            if outOfStock, !c.inStock[i] { return .outOfStock }
            if !categories.isEmpty, sortedContains(categories, c.categories[i]) {
                return .deniedCategory(c.categories[i])
            }
            if !brands.isEmpty, sortedContains(brands, c.brands[i]) { return .deniedBrand(c.brands[i]) }
            return nil
        }
    }

    func exclusions(_ rules: RerankRules) -> Exclusions {
        Exclusions(
            rows: ruleMemory.excludedRows, categories: ruleMemory.deniedCategories, brands: ruleMemory.deniedBrands,
            outOfStock: rules.excludeOutOfStock)
    }

    /// Sets each candidate's state, applies boosts, normalises relevance to [0, 1] over the
    /// eligible retrieved candidates (min–max; all 1 when they are equal), and gives categories
    /// and brands dense slots for the caps (only when a rule needs them). O(n).
    private func classifyAndBoost(_ c: CandidateSet, _ request: RerankRequest) {
        let n = c.count
        dimension = c.dimension
        let rules = request.rules
        let needCategories = rules.maxPerCategory != nil || rules.spread != nil
        let needBrands = rules.maxPerBrand != nil
        // Locals: stored properties of a class pay a dynamic exclusivity check per access.
        var (rowMap, categoryMap, brandMap) = (ruleMemory.rowIds, ruleMemory.categoryIds, ruleMemory.brandIds)
        rowMap.reset(expected: n)
        categoryMap.reset(expected: needCategories ? n : 0)
        brandMap.reset(expected: needBrands ? n : 0)
        let memory = perCandidate
        let (state, boosted, normalized, rowOf) = (memory.state, memory.boosted, memory.normalized, memory.rows)
        let (categorySlot, brandSlot) = (memory.categorySlot, memory.brandSlot)
        let exclusions = exclusions(rules)
        let (roles, relevance, candidateRows) = (c.roles, c.relevance, c.rows)
        let (categories, brands) = (c.categories, c.brands)
        let boosts = rules.boosts
        var duplicates = false
        var low = Float.infinity
        var high = -Float.infinity
        for i in 0..<n {
            var st = CandidateState.available
            if exclusions.reason(c, i) != nil {
                st = CandidateState.excluded
            } else if roles[i] == .pinOnly {
                st = CandidateState.pinOnly
            }
            state[i] = st
            rowOf[i] = candidateRows[i]
            if !rowMap.slot(for: candidateRows[i]).inserted { duplicates = true }
            categorySlot[i] = needCategories ? categoryMap.slot(for: categories[i]).slot : 0
            brandSlot[i] = needBrands ? brandMap.slot(for: brands[i]).slot : 0
            var value = relevance[i]
            if !boosts.isEmpty {
                value = Self.boostedRelevance(value, c, i, boosts, now: request.now)
            }
            boosted[i] = value
            if st == CandidateState.available {
                low = min(low, value)
                high = max(high, value)
            }
        }
        let range = high - low
        let scale: Float = range > 0 && range.isFinite ? 1 / range : 0
        for i in 0..<n {
            normalized[i] = scale == 0 ? 1 : (boosted[i] - low) * scale
        }
        (ruleMemory.rowIds, ruleMemory.categoryIds, ruleMemory.brandIds) = (rowMap, categoryMap, brandMap)
        hasDuplicateRows = duplicates
        let categoryCount = max(categoryMap.count, 1)
        ruleMemory.categoryUsed.prepare(count: categoryCount, value: 0)
        ruleMemory.spreadMark.prepare(count: categoryCount, value: 0)
        ruleMemory.brandUsed.prepare(count: max(brandMap.count, 1), value: 0)
    }

    static func boostedRelevance(_ raw: Float, _ c: CandidateSet, _ i: Int, _ boosts: [Boost], now: Int64) -> Float {
        var factor: Float = 1
        var addend: Float = 0
        let (row, category, brand, tags, created) = (c.rows[i], c.categories[i], c.brands[i], c.tags[i], c.createdAt[i])
        for boost in boosts
        where boost.matches(row: row, category: category, brand: brand, tags: tags, createdAt: created, now: now) {
            switch boost.effect {
            case .multiply(let f): factor *= f
            case .add(let a): addend += a
            }
        }
        return raw * factor + addend
    }

    /// Validates pins, puts the valid ones in `slots`, and charges them to the caps up front so
    /// free items can never take the room a later pin needs.
    private func reservePins(_ c: CandidateSet, _ rules: RerankRules, k: Int, _ s: inout SelectionState) {
        positions.slots.prepare(count: k, value: -1)
        positions.traces.prepare(count: k, value: PositionTrace())
        positions.pinPositions.removeAll(keepingCapacity: true)
        let (slots, traces, state) = (positions.slots, positions.traces, perCandidate.state)
        guard !rules.pins.isEmpty else { return }
        for (pinIndex, pin) in rules.pins.enumerated() {
            guard pin.position >= 0, pin.position < k else {
                droppedPins.append(DroppedPin(pin: pin, reason: .positionOutOfRange))
                continue
            }
            guard slots[pin.position] < 0 else {
                droppedPins.append(DroppedPin(pin: pin, reason: .positionTaken))
                continue
            }
            guard let index = c.rows.firstIndex(of: pin.row) else {
                droppedPins.append(DroppedPin(pin: pin, reason: .itemNotSupplied))
                continue
            }
            if let reason = exclusions(rules).reason(c, index) {
                droppedPins.append(DroppedPin(pin: pin, reason: .excluded(reason)))
                continue
            }
            guard state[index] != CandidateState.pinReserved else {
                droppedPins.append(DroppedPin(pin: pin, reason: .duplicateItem))
                continue
            }
            slots[pin.position] = Int32(index)
            traces[pin.position].pinIndex = Int32(pinIndex)
            state[index] = CandidateState.pinReserved
        }
        // Re-admit the pins in position order so that on a conflict the earlier position wins.
        for p in 0..<k where slots[p] >= 0 { positions.pinPositions.append(p) }
        for p in positions.pinPositions {
            let index = Int(slots[p])
            slots[p] = -1
            if let rule = blockingRule(c, index, position: p, rules, s) {
                state[index] = c.roles[index] == .pinOnly ? CandidateState.pinOnly : CandidateState.available
                let pin = rules.pins[Int(traces[p].pinIndex)]
                traces[p].pinIndex = -1
                droppedPins.append(DroppedPin(pin: pin, reason: .conflictsWith(rule)))
                continue
            }
            slots[p] = Int32(index)
            s.chargeCaps(index)
        }
    }

    /// The rule that forbids candidate `index` at `position` given the filled slots, if any.
    private func blockingRule(
        _ c: CandidateSet, _ index: Int, position: Int, _ rules: RerankRules, _ s: SelectionState
    ) -> BlockingRule? {
        if let cap = rules.maxPerCategory, s.categoryUsed[Int(s.categorySlot[index])] >= cap {
            return .categoryCap(category: c.categories[index], limit: cap)
        }
        if let cap = rules.maxPerBrand, s.brandUsed[Int(s.brandSlot[index])] >= cap {
            return .brandCap(brand: c.brands[index], limit: cap)
        }
        if let spread = rules.spread, spreadBlocks(s, s.categorySlot[index], at: position, spread) {
            return .spread(category: c.categories[index], maxPerWindow: spread.maxPerWindow, window: spread.window)
        }
        return nil
    }

    /// True when one more item of category slot `category` at `position` would put more than
    /// `maxPerWindow` of them in some window of `window` consecutive filled positions. O(window).
    func spreadBlocks(_ s: SelectionState, _ category: Int32, at position: Int, _ spread: SpreadRule) -> Bool {
        let w = spread.window
        let k = kLimit
        let slots = positions.slots
        let low = max(0, position - w + 1)
        let high = min(k - 1, position + w - 1)
        @inline(__always) func counts(_ q: Int) -> Int {
            guard q != position, q <= high else { return 0 }
            let filled = slots[q]
            return filled >= 0 && s.categorySlot[Int(filled)] == category ? 1 : 0
        }
        // Slide a window of w positions over [low, high]; every window start s ≤ position with
        // s + w − 1 ≥ position contains `position`.
        var inWindow = 0
        for q in low..<(low + w) { inWindow += counts(q) }
        var start = low
        while true {
            if inWindow + 1 > spread.maxPerWindow { return true }
            if start >= position { return false }
            inWindow -= counts(start)
            inWindow += counts(start + w)
            start += 1
        }
    }
}

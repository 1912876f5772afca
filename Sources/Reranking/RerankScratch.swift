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

/// The re-ranker and its reusable memory: MMR / DPP diversification under exclusions, caps, a
/// spread rule, boosts and pins. See docs/RERANKING.md.
///
/// Keep one per event loop (or thread) and call `rerank` for each request. After the first calls
/// have grown the buffers to the largest request seen, a call with `explain == nil` performs no
/// heap allocation. The results live in `ranked`, `droppedPins` and `explanations` until the next
/// call; copy what must outlive it.
///
/// Not thread-safe: one caller at a time.
public final class RerankScratch {
    /// The list of the last call, in order (position = index).
    public internal(set) var ranked: [RankedItem] = []
    /// Pins of the last call that are not in the list, with the reason.
    public internal(set) var droppedPins: [DroppedPin] = []
    /// One per `ranked` item when the last call asked for explanations, else empty.
    public internal(set) var explanations: [RerankExplanation] = []

    // Per candidate.
    var state = ScratchBuffer<UInt8>(filler: 0)
    var boosted = ScratchBuffer<Float>(filler: 0)
    var normalized = ScratchBuffer<Float>(filler: 0)
    var categoryCount = ScratchBuffer<Int32>(filler: 0)
    var brandCount = ScratchBuffer<Int32>(filler: 0)
    /// Candidate indices by decreasing normalised relevance (ties: lower row first).
    var order = ScratchBuffer<Int32>(filler: 0)
    var sortKeys = ScratchBuffer<UInt64>(filler: 0)
    /// MMR: largest cosine to the chosen items seen so far, and which item it was.
    var maxSimilarity = ScratchBuffer<Float>(filler: 0)
    var mostSimilar = ScratchBuffer<Int32>(filler: -1)
    /// DPP: residual variance d² given the conditioning items.
    var residual = ScratchBuffer<Float>(filler: 0)
    /// MMR and full DPP are evaluated lazily: how many chosen items a candidate's state accounts
    /// for, and its score then — an upper bound on its current score, because the MMR penalty
    /// only grows and the DPP residual only shrinks as items are chosen.
    var seen = ScratchBuffer<Int32>(filler: 0)
    var cachedScore = ScratchBuffer<Float>(filler: 0)
    /// DPP: the incremental Cholesky factor, row-major, `factorWidth` floats per candidate; column
    /// slot `t` belongs to chosen item `columnItem[t]`, whose pivot (diagonal) is `pivots[t]`.
    var factor = ScratchBuffer<Float>(filler: 0)
    var factorWidth = 0
    var columnItem = ScratchBuffer<Int32>(filler: -1)
    var pivots = ScratchBuffer<Float>(filler: 1)
    /// Sliding-window DPP: column slots in age order, and the unused ones.
    var activeColumns: [Int] = []
    var freeColumns: [Int] = []
    /// Chosen candidates in list order.
    var chosenItems = ScratchBuffer<Int32>(filler: -1)
    // Per position.
    var slots = ScratchBuffer<Int32>(filler: -1)
    var traces = ScratchBuffer<PositionTrace>(filler: PositionTrace())
    // Rule lookups, sorted.
    var excludedRows: [Int32] = []
    var deniedCategories: [Int32] = []
    var deniedBrands: [Int32] = []
    var blockedCategories: [Int32] = []
    var pinPositions: [Int] = []

    // The call in progress.
    var count = 0
    var dimension = 0
    var vectorBase: UnsafePointer<Float>? = nil
    var chosenCount = 0
    var kLimit = 0
    var parameters = MethodParameters()

    /// Creates scratch sized for `candidates` items and lists of `k`; larger calls grow it once.
    public init(candidates: Int = 512, k: Int = 100) {
        ranked.reserveCapacity(k)
        droppedPins.reserveCapacity(8)
        excludedRows.reserveCapacity(64)
        deniedCategories.reserveCapacity(16)
        deniedBrands.reserveCapacity(16)
        blockedCategories.reserveCapacity(16)
        pinPositions.reserveCapacity(16)
        activeColumns.reserveCapacity(k + 1)
        freeColumns.reserveCapacity(k + 1)
        reserve(candidates: candidates, k: k, columns: 0)
    }

    deinit {
        state.free()
        boosted.free()
        normalized.free()
        categoryCount.free()
        brandCount.free()
        order.free()
        sortKeys.free()
        maxSimilarity.free()
        mostSimilar.free()
        residual.free()
        seen.free()
        cachedScore.free()
        factor.free()
        columnItem.free()
        pivots.free()
        chosenItems.free()
        slots.free()
        traces.free()
    }

    private func reserve(candidates n: Int, k: Int, columns columnCount: Int) {
        state.reserve(n)
        boosted.reserve(n)
        normalized.reserve(n)
        categoryCount.reserve(n)
        brandCount.reserve(n)
        order.reserve(n)
        sortKeys.reserve(n)
        maxSimilarity.reserve(n)
        mostSimilar.reserve(n)
        residual.reserve(n)
        seen.reserve(n)
        cachedScore.reserve(n)
        factor.reserve(n * columnCount)
        columnItem.reserve(columnCount)
        pivots.reserve(columnCount)
        chosenItems.reserve(k)
        slots.reserve(k)
        traces.reserve(k)
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
    /// - Complexity: O(n log n + k·n) plus, for MMR and DPP, at most O(k·n·d) (plus O(k²·n) for
    ///   DPP) — usually far less, as candidates that cannot win a position are not re-scored; with
    ///   a DPP window every step costs O(n·(d + w)). n = candidates, d = dimension.
    @discardableResult
    public func rerank(
        _ candidates: CandidateSet, _ request: RerankRequest, explain: ExplanationContext? = nil
    ) throws(RerankError) -> RerankOutcome {
        try request.validate()
        for (i, score) in candidates.relevance.enumerated() where !score.isFinite {
            throw .nonFiniteRelevance(row: candidates.rows[i])
        }
        ranked.removeAll(keepingCapacity: true)
        droppedPins.removeAll(keepingCapacity: true)
        explanations.removeAll(keepingCapacity: true)
        let n = candidates.count
        let k = request.k
        count = n
        kLimit = k
        dimension = candidates.dimension
        chosenCount = 0
        factorWidth = MethodParameters.factorWidth(request.method, k: k)
        reserve(candidates: n, k: k, columns: factorWidth)

        let shortfall = candidates.vectors.withUnsafeBufferPointer { vectors in
            vectorBase = vectors.baseAddress
            defer { vectorBase = nil }
            prepareRules(request.rules)
            classifyAndBoost(candidates, request)
            reservePins(candidates, request.rules, k: k)
            beginDiversity(candidates, request.method)
            return fill(candidates, request, tracking: explain != nil)
        }
        if let explain {
            buildExplanations(candidates, request, context: explain)
        }
        return RerankOutcome(count: ranked.count, shortfall: shortfall, droppedPinCount: droppedPins.count)
    }

    // MARK: Rules

    private func prepareRules(_ rules: RerankRules) {
        func sortedCopy(_ source: [Int32], into target: inout [Int32]) {
            target.removeAll(keepingCapacity: true)
            target.append(contentsOf: source)
            sortInPlace(&target)
        }
        sortedCopy(rules.excludedRows, into: &excludedRows)
        sortedCopy(rules.deniedCategories, into: &deniedCategories)
        sortedCopy(rules.deniedBrands, into: &deniedBrands)
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
            rows: excludedRows, categories: deniedCategories, brands: deniedBrands, outOfStock: rules.excludeOutOfStock)
    }

    /// Sets each candidate's state, applies boosts and normalises relevance to [0, 1] over the
    /// eligible retrieved candidates (min–max; all 1 when they are equal).
    private func classifyAndBoost(_ c: CandidateSet, _ request: RerankRequest) {
        let n = c.count
        state.prepare(count: n, value: CandidateState.available)
        categoryCount.prepare(count: n, value: 0)
        brandCount.prepare(count: n, value: 0)
        // Locals: stored properties of a class pay a dynamic exclusivity check per access.
        let (state, boosted, normalized) = (state, boosted, normalized)
        let exclusions = exclusions(request.rules)
        let (roles, relevance) = (c.roles, c.relevance)
        let boosts = request.rules.boosts
        var low = Float.infinity
        var high = -Float.infinity
        for i in 0..<n {
            if exclusions.reason(c, i) != nil {
                state[i] = CandidateState.excluded
            } else if roles[i] == .pinOnly {
                state[i] = CandidateState.pinOnly
            }
            var value = relevance[i]
            if !boosts.isEmpty {
                value = Self.boostedRelevance(value, c, i, boosts, now: request.now)
            }
            boosted[i] = value
            if state[i] == CandidateState.available {
                low = min(low, value)
                high = max(high, value)
            }
        }
        let range = high - low
        let scale: Float = range > 0 && range.isFinite ? 1 / range : 0
        for i in 0..<n {
            normalized[i] = scale == 0 ? 1 : (boosted[i] - low) * scale
        }
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
    private func reservePins(_ c: CandidateSet, _ rules: RerankRules, k: Int) {
        slots.prepare(count: k, value: -1)
        traces.prepare(count: k, value: PositionTrace())
        pinPositions.removeAll(keepingCapacity: true)
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
        for p in 0..<k where slots[p] >= 0 { pinPositions.append(p) }
        for p in pinPositions {
            let index = Int(slots[p])
            slots[p] = -1
            if let rule = blockingRule(c, index, position: p, rules) {
                state[index] = c.roles[index] == .pinOnly ? CandidateState.pinOnly : CandidateState.available
                let pin = rules.pins[Int(traces[p].pinIndex)]
                traces[p].pinIndex = -1
                droppedPins.append(DroppedPin(pin: pin, reason: .conflictsWith(rule)))
                continue
            }
            slots[p] = Int32(index)
            chargeCaps(c, index, rules)
        }
    }

    /// Counts item `index` (`by` = 1) or stops counting it (`by` = −1) against the category and
    /// brand caps of every candidate sharing them. O(n).
    func chargeCaps(_ c: CandidateSet, _ index: Int, _ rules: RerankRules, by delta: Int32 = 1) {
        if rules.maxPerCategory != nil {
            let (categories, counts) = (c.categories, categoryCount)
            let category = categories[index]
            for i in 0..<c.count where categories[i] == category { counts[i] += delta }
        }
        if rules.maxPerBrand != nil {
            let (brands, counts) = (c.brands, brandCount)
            let brand = brands[index]
            for i in 0..<c.count where brands[i] == brand { counts[i] += delta }
        }
    }

    /// The rule that forbids candidate `index` at `position` given the filled slots, if any.
    private func blockingRule(_ c: CandidateSet, _ index: Int, position: Int, _ rules: RerankRules) -> BlockingRule? {
        if let cap = rules.maxPerCategory, categoryCount[index] >= cap {
            return .categoryCap(category: c.categories[index], limit: cap)
        }
        if let cap = rules.maxPerBrand, brandCount[index] >= cap {
            return .brandCap(brand: c.brands[index], limit: cap)
        }
        if let spread = rules.spread, spreadBlocks(c, c.categories[index], at: position, spread) {
            return .spread(category: c.categories[index], maxPerWindow: spread.maxPerWindow, window: spread.window)
        }
        return nil
    }

    /// True when one more `category` item at `position` would put more than `maxPerWindow` of
    /// them in some window of `window` consecutive filled positions. O(window).
    func spreadBlocks(_ c: CandidateSet, _ category: Int32, at position: Int, _ spread: SpreadRule) -> Bool {
        let w = spread.window
        let k = kLimit
        let low = max(0, position - w + 1)
        let high = min(k - 1, position + w - 1)
        @inline(__always) func counts(_ q: Int) -> Int {
            guard q != position, q <= high else { return 0 }
            let s = slots[q]
            return s >= 0 && c.categories[Int(s)] == category ? 1 : 0
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

import Reranking
import TestSupport
import Testing

/// Properties that must hold for every input: checked over seeded random catalogues and rule sets
/// for every method.
@Suite struct RerankPropertyTests {
    static let methods: [DiversityMethod] = [
        .none, .mmr(lambda: 0.3), .mmr(lambda: 0.8), .dpp(theta: 0.5), .dpp(theta: 0.7, window: 3),
    ]

    @Test(arguments: methods)
    func rulesNeverViolatedOverRandomInputs(method: DiversityMethod) throws {
        let scratch = Reranker(candidates: 16, k: 4)
        var checked = 0
        for seed in UInt64(1)...150 {
            let count = Int(seed % 7) * 15 + 5
            let k = Int(seed % 5) * 6 + 1
            let candidates = RerankFixtures.catalogue(seed: seed, count: count)
            let request = RerankRequest(
                k: k, method: method, rules: RerankFixtures.rules(seed: seed, rowCount: count, k: k),
                now: RerankFixtures.now)
            let outcome = try scratch.rerank(candidates, request)
            let problems = RerankFixtures.violations(candidates, request, outcome, scratch)
            #expect(problems.isEmpty, "seed \(seed): \(problems)")
            checked += scratch.ranked.count
        }
        #expect(checked > 500)
    }

    @Test(arguments: methods)
    func capsNeverExceededWhenCandidatesSkewed(method: DiversityMethod) throws {
        // Nine in ten candidates share category 0 and brand 0: free filling would take them all.
        let scratch = Reranker()
        for seed in UInt64(1)...20 {
            var candidates = CandidateSet(dimension: 8)
            let source = RerankFixtures.catalogue(seed: seed, count: 80, dimension: 8, pinOnly: 0)
            for i in 0..<source.count {
                var attributes = source.attributes(at: i)
                attributes.category = i % 10 == 0 ? Int32(1 + i % 3) : 0
                attributes.brand = i % 10 == 0 ? Int32(1 + i % 4) : 0
                let vector = Array(source.vectors[(i * 8)..<(i * 8 + 8)])
                candidates.append(attributes, relevance: source.relevance[i], vector: vector)
            }
            let rules = RerankRules(maxPerCategory: 3, maxPerBrand: 4, spread: SpreadRule(maxPerWindow: 1, window: 2))
            let request = RerankRequest(k: 20, method: method, rules: rules)
            let outcome = try scratch.rerank(candidates, request)
            #expect(RerankFixtures.violations(candidates, request, outcome, scratch).isEmpty)
            #expect(outcome.count >= 6, "three categories beyond 0, each ≥ 1 item, plus category 0")
        }
    }

    @Test func noDuplicatesEvenWhenARowIsSuppliedTwice() throws {
        var candidates = CandidateSet(dimension: 2)
        candidates.append(ItemAttributes(row: 7, category: 0, brand: 0), relevance: 0.9, vector: [1, 0])
        candidates.append(ItemAttributes(row: 7, category: 0, brand: 0), relevance: 0.8, vector: [1, 0])
        candidates.append(ItemAttributes(row: 8, category: 0, brand: 0), relevance: 0.1, vector: [0, 1])
        let scratch = Reranker()
        for method in Self.methods {
            try scratch.rerank(candidates, RerankRequest(k: 3, method: method))
            #expect(scratch.ranked.map(\.row) == [7, 8], "\(method)")
        }
    }

    @Test(arguments: methods)
    func pinsLandAtTheirExactPositions(method: DiversityMethod) throws {
        let scratch = Reranker()
        for seed in UInt64(1)...30 {
            let candidates = RerankFixtures.catalogue(seed: seed, count: 60, pinOnly: 2)
            let pins = [
                Pin(row: 10_000, position: 0, label: .sponsored), Pin(row: 17, position: 4),
                Pin(row: 10_001, position: 9, label: .sponsored),
            ]
            let request = RerankRequest(k: 10, method: method, rules: RerankRules(pins: pins))
            let outcome = try scratch.rerank(candidates, request)
            #expect(outcome.count == 10)
            #expect(scratch.droppedPins.isEmpty)
            for pin in pins {
                #expect(scratch.ranked[pin.position].row == pin.row)
                #expect(scratch.ranked[pin.position].isPinned)
            }
            #expect(scratch.ranked.filter(\.isPinned).count == 3)
        }
    }

    @Test func mmrWithLambdaOneEqualsRelevanceOrder() throws {
        let scratch = Reranker()
        for seed in UInt64(1)...25 {
            let candidates = RerankFixtures.catalogue(seed: seed, count: 120, pinOnly: 0)
            let boosts = [Boost(.category(2), .multiply(1.4)), Boost(.anyTag(0b1010), .add(0.1))]
            let request = RerankRequest(k: 30, method: .mmr(lambda: 1), rules: RerankRules(boosts: boosts))
            try scratch.rerank(candidates, request)
            let mmr = scratch.ranked.map(\.row)
            var scored: [(value: Float, row: Int32)] = []
            for i in 0..<candidates.count {
                let factor: Float = candidates.categories[i] == 2 ? 1.4 : 1
                let addend: Float = candidates.tags[i] & 0b1010 != 0 ? 0.1 : 0
                scored.append((candidates.relevance[i] * factor + addend, candidates.rows[i]))
            }
            scored.sort { $0.value != $1.value ? $0.value > $1.value : $0.row < $1.row }
            let expected = scored.prefix(30).map(\.row)
            #expect(mmr == Array(expected))
            try scratch.rerank(candidates, RerankRequest(k: 30, method: .none, rules: RerankRules(boosts: boosts)))
            #expect(scratch.ranked.map(\.row) == mmr)
            try scratch.rerank(
                candidates, RerankRequest(k: 30, method: .dpp(theta: 1), rules: RerankRules(boosts: boosts)))
            #expect(scratch.ranked.map(\.row) == mmr, "θ = 1 DPP is relevance order too")
        }
    }

    @Test(arguments: [DiversityMethod.dpp(theta: 0.5), .dpp(theta: 0.9), .dpp(theta: 0.6, window: 2)])
    func dppOnIdenticalItemsPicksOneThenTheNextDistinct(method: DiversityMethod) throws {
        let candidates = Self.fiveIdenticalThenTwoDistinct()
        let scratch = Reranker()
        try scratch.rerank(candidates, RerankRequest(k: 3, method: method))
        #expect(scratch.ranked.map(\.row) == [0, 5, 6])
    }

    @Test func mmrPrefersADistinctItemOverADuplicateOfTheFirst() throws {
        let candidates = Self.fiveIdenticalThenTwoDistinct()
        let scratch = Reranker()
        try scratch.rerank(candidates, RerankRequest(k: 2, method: .mmr(lambda: 0.5)))
        // Row 6 points away from the duplicates (negative cosine), so it beats row 5 as well.
        #expect(scratch.ranked.map(\.row) == [0, 6])
    }

    /// Rows 0–4 share one vector (relevance 1.0 … 0.96); rows 5 and 6 are distinct and less relevant.
    static func fiveIdenticalThenTwoDistinct() -> CandidateSet {
        var candidates = CandidateSet(dimension: 4)
        for n in 0..<5 {
            candidates.append(
                ItemAttributes(row: Int32(n), category: 0, brand: 0), relevance: 1 - Float(n) * 0.01,
                vector: [1, 2, 3, 4])
        }
        candidates.append(ItemAttributes(row: 5, category: 0, brand: 0), relevance: 0.5, vector: [4, -1, 0, 1])
        candidates.append(ItemAttributes(row: 6, category: 0, brand: 0), relevance: 0.4, vector: [0, 0, 1, -3])
        return candidates
    }

    @Test(arguments: methods)
    func tiesBreakByLowerRowWhateverTheInputOrder(method: DiversityMethod) throws {
        // Equal relevance and mutually orthogonal vectors: every score ties at every step.
        var rng = SeededGenerator(seed: 99)
        var first: [Int32]?
        for _ in 0..<6 {
            var rows = (0..<Int32(12)).map { $0 }
            rows.shuffle(using: &rng)
            var candidates = CandidateSet(dimension: 12)
            for row in rows {
                var vector = [Float](repeating: 0, count: 12)
                vector[Int(row)] = 1
                candidates.append(ItemAttributes(row: row, category: row % 3, brand: 0), relevance: 0.5, vector: vector)
            }
            let scratch = Reranker()
            try scratch.rerank(candidates, RerankRequest(k: 8, method: method))
            let order = scratch.ranked.map(\.row)
            #expect(order == (0..<8).map { $0 })
            if let first { #expect(order == first) }
            first = order
        }
    }

    @Test func infeasibleCapsGiveShorterListWithFlag() throws {
        let candidates = RerankFixtures.catalogue(seed: 5, count: 40, categories: 2, pinOnly: 0)
        let scratch = Reranker()
        let request = RerankRequest(k: 10, method: .mmr(lambda: 0.7), rules: RerankRules(maxPerCategory: 2))
        let outcome = try scratch.rerank(candidates, request)
        #expect(outcome.count == 4)
        #expect(outcome.shortfall == .blockedByRules)
        #expect(outcome.isShort)
    }

    @Test func infeasibleSpreadGivesShorterListWithFlag() throws {
        let candidates = RerankFixtures.catalogue(seed: 6, count: 30, categories: 1, pinOnly: 0)
        let scratch = Reranker()
        let rules = RerankRules(spread: SpreadRule(maxPerWindow: 1, window: 3))
        let outcome = try scratch.rerank(candidates, RerankRequest(k: 5, method: .dpp(theta: 0.5), rules: rules))
        #expect(outcome.count == 1, "one category, at most one per three positions: nothing can follow")
        #expect(outcome.shortfall == .blockedByRules)
    }

    @Test func tooFewEligibleCandidatesGiveShorterListWithFlag() throws {
        let candidates = RerankFixtures.catalogue(seed: 7, count: 12, pinOnly: 0)
        let scratch = Reranker()
        let rules = RerankRules(excludedRows: [0, 1, 2, 3])
        let outcome = try scratch.rerank(candidates, RerankRequest(k: 20, method: .mmr(lambda: 0.5), rules: rules))
        #expect(outcome.count == 8)
        #expect(outcome.shortfall == .candidatesExhausted)
    }

    /// Without explanations MMR takes its picks from a winner tree of score bounds and the full
    /// DPP from blocks of eight candidates; with them, both scan in relevance order. Both ways
    /// must give the same list.
    @Test(arguments: methods)
    func explanationsDoNotChangeTheList(method: DiversityMethod) throws {
        let plain = Reranker()
        let explained = Reranker()
        let context = ExplanationContext(origin: .popularity, categoryName: { "Category \($0)" })
        for seed in UInt64(1)...120 {
            let count = Int(seed % 9) * 20 + 5
            let k = Int(seed % 6) * 5 + 1
            let candidates = RerankFixtures.catalogue(seed: seed, count: count, clustered: seed % 2 == 0)
            let request = RerankRequest(
                k: k, method: method, rules: RerankFixtures.rules(seed: seed, rowCount: count, k: k),
                now: RerankFixtures.now)
            let outcome = try plain.rerank(candidates, request)
            let explainedOutcome = try explained.rerank(candidates, request, explain: context)
            #expect(outcome == explainedOutcome, "seed \(seed)")
            #expect(plain.ranked == explained.ranked, "seed \(seed)")
            #expect(plain.droppedPins == explained.droppedPins, "seed \(seed)")
        }
    }

    /// The full DPP without explanations brings candidates up to date eight at a time in SIMD
    /// lanes, in an order that depends on the bounds; with explanations, when the relevance scan
    /// reaches them. Dimensions that exercise every tail of the eight-lane dot product (not a
    /// multiple of 16, 8 or 4), lists longer than the dimension (redundant items) and candidate
    /// counts that leave a partial last block must still give the same list, scores included.
    @Test(arguments: [1, 3, 7, 8, 12, 13, 24, 37])
    func dppBlocksAgreeWithTheScanForAnyDimension(dimension: Int) throws {
        let plain = Reranker()
        let explained = Reranker()
        let context = ExplanationContext(origin: .popularity)
        for seed in UInt64(1)...30 {
            let count = Int(seed % 7) * 9 + 3
            let k = Int(seed % 5) * 4 + dimension / 2 + 1
            let candidates = RerankFixtures.catalogue(
                seed: seed, count: count, dimension: dimension, clustered: seed % 2 == 0)
            let rules = seed % 3 == 0 ? RerankRules() : RerankFixtures.rules(seed: seed, rowCount: count, k: k)
            let request = RerankRequest(
                k: k, method: .dpp(theta: seed % 4 == 0 ? 0.3 : 0.7), rules: rules, now: RerankFixtures.now)
            let outcome = try plain.rerank(candidates, request)
            let explainedOutcome = try explained.rerank(candidates, request, explain: context)
            #expect(outcome == explainedOutcome, "seed \(seed)")
            #expect(plain.ranked == explained.ranked, "seed \(seed)")
        }
    }

    @Test func reusedScratchGivesTheSameListAsAFreshOne() throws {
        let reused = Reranker(candidates: 4, k: 2)
        for seed in UInt64(1)...20 {
            let candidates = RerankFixtures.catalogue(seed: seed, count: 50 + Int(seed) * 7)
            let k = 5 + Int(seed)
            let request = RerankRequest(
                k: k, method: Self.methods[Int(seed) % Self.methods.count],
                rules: RerankFixtures.rules(seed: seed, rowCount: candidates.count, k: k), now: RerankFixtures.now)
            try reused.rerank(candidates, request)
            let fresh = Reranker()
            try fresh.rerank(candidates, request)
            #expect(reused.ranked == fresh.ranked)
            #expect(reused.droppedPins == fresh.droppedPins)
        }
    }
}

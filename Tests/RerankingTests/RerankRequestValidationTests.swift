import Reranking
import Testing

/// Bad parameters are rejected with an error naming the field, before any work is done.
@Suite struct RerankRequestValidationTests {
    static let candidates: CandidateSet = {
        var c = CandidateSet(dimension: 2)
        c.append(ItemAttributes(row: 1, category: 0, brand: 0), relevance: 1, vector: [1, 0])
        return c
    }()

    @Test(arguments: [
        (RerankRequest(k: -1), "k"),
        (RerankRequest(k: 5, method: .mmr(lambda: 1.5)), "method.mmr.lambda"),
        (RerankRequest(k: 5, method: .mmr(lambda: .nan)), "method.mmr.lambda"),
        (RerankRequest(k: 5, method: .dpp(theta: -0.1)), "method.dpp.theta"),
        (RerankRequest(k: 5, method: .dpp(theta: 0.5, window: 0)), "method.dpp.window"),
        (RerankRequest(k: 5, rules: RerankRules(maxPerCategory: -1)), "rules.maxPerCategory"),
        (RerankRequest(k: 5, rules: RerankRules(maxPerBrand: -2)), "rules.maxPerBrand"),
        (
            RerankRequest(k: 5, rules: RerankRules(spread: SpreadRule(maxPerWindow: 1, window: 0))),
            "rules.spread.window"
        ),
        (
            RerankRequest(k: 5, rules: RerankRules(spread: SpreadRule(maxPerWindow: 0, window: 3))),
            "rules.spread.maxPerWindow"
        ),
        (
            RerankRequest(k: 5, rules: RerankRules(boosts: [Boost(.brand(1), .multiply(.infinity))])),
            "rules.boosts[0].effect"
        ),
        (
            RerankRequest(
                k: 5, rules: RerankRules(boosts: [Boost(.brand(1), .add(1)), Boost(.createdWithin(days: -1), .add(1))])),
            "rules.boosts[1].match.days"
        ),
    ])
    func rejectsOutOfRangeParameterNamingTheField(request: RerankRequest, field: String) {
        let scratch = Reranker()
        #expect {
            try scratch.rerank(Self.candidates, request)
        } throws: { error in
            guard case .invalidArgument(let named, _) = error as? RerankError else { return false }
            return named == field
        }
    }

    @Test func rejectsNonFiniteRelevanceNamingTheRow() {
        var c = CandidateSet(dimension: 2)
        c.append(ItemAttributes(row: 1, category: 0, brand: 0), relevance: 1, vector: [1, 0])
        c.append(ItemAttributes(row: 42, category: 0, brand: 0), relevance: .nan, vector: [0, 1])
        #expect(throws: RerankError.nonFiniteRelevance(row: 42)) {
            try Reranker().rerank(c, RerankRequest(k: 2))
        }
    }

    @Test func zeroKGivesAnEmptyListAndDropsEveryPin() throws {
        let scratch = Reranker()
        let outcome = try scratch.rerank(
            Self.candidates, RerankRequest(k: 0, rules: RerankRules(pins: [Pin(row: 1, position: 0)])))
        #expect(outcome.count == 0)
        #expect(outcome.shortfall == nil)
        #expect(scratch.droppedPins.map(\.reason) == [.positionOutOfRange])
    }

    @Test func pinDropReasonsAreReported() throws {
        var c = CandidateSet(dimension: 2)
        c.append(ItemAttributes(row: 1, category: 0, brand: 0), relevance: 1, vector: [1, 0])
        c.append(ItemAttributes(row: 2, category: 0, brand: 0, inStock: false), relevance: 1, vector: [1, 0])
        c.append(ItemAttributes(row: 3, category: 0, brand: 0), relevance: 1, vector: [1, 0])
        c.append(ItemAttributes(row: 4, category: 5, brand: 0), relevance: 1, vector: [1, 0], role: .pinOnly)
        let pins = [
            Pin(row: 1, position: 0), Pin(row: 3, position: 0), Pin(row: 1, position: 2), Pin(row: 2, position: 3),
            Pin(row: 9, position: 3), Pin(row: 4, position: 7), Pin(row: 3, position: 1),
        ]
        let rules = RerankRules(excludeOutOfStock: true, maxPerCategory: 1, pins: pins)
        let scratch = Reranker()
        try scratch.rerank(c, RerankRequest(k: 5, rules: rules))
        #expect(scratch.ranked.map(\.row) == [1])
        #expect(
            scratch.droppedPins.map(\.reason) == [
                .positionTaken, .duplicateItem, .excluded(.outOfStock), .itemNotSupplied, .positionOutOfRange,
                .conflictsWith(.categoryCap(category: 0, limit: 1)),
            ])
    }
}

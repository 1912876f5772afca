import Glibc
import Reranking
import Testing

/// One test per explanation field, on small hand-built inputs whose answers are known.
@Suite struct RerankExplanationTests {
    static let names = ExplanationContext(
        origin: .popularity, categoryName: { [1: "Running Shoes", 2: "Jackets"][$0] },
        brandName: { [7: "Acme"][$0] })

    /// Rows 1–4: relevance 0.9, 0.8, 0.5, 0.1; rows 1 and 2 identical, row 3 orthogonal to them;
    /// only row 1 is recent (created at t = 1000 s).
    static func fourItems() -> CandidateSet {
        var c = CandidateSet(dimension: 3)
        c.append(ItemAttributes(row: 1, category: 1, brand: 7, createdAt: 1_000), relevance: 0.9, vector: [1, 0, 0])
        c.append(
            ItemAttributes(row: 2, category: 1, brand: 8, createdAt: -1_000_000), relevance: 0.8, vector: [2, 0, 0])
        c.append(
            ItemAttributes(row: 3, category: 2, brand: 8, createdAt: -1_000_000, tags: 0b100), relevance: 0.5,
            vector: [0, 1, 0])
        c.append(
            ItemAttributes(row: 4, category: 2, brand: 8, createdAt: -1_000_000), relevance: 0.1, vector: [0, 0.6, 0.8])
        return c
    }

    func explain(_ request: RerankRequest, _ context: ExplanationContext = names) throws -> [RerankExplanation] {
        let scratch = Reranker()
        try scratch.rerank(Self.fourItems(), request, explain: context)
        #expect(scratch.explanations.count == scratch.ranked.count)
        #expect(scratch.explanations.map(\.row) == scratch.ranked.map(\.row))
        #expect(scratch.explanations.map(\.position) == Array(scratch.ranked.indices))
        return scratch.explanations
    }

    @Test func noExplanationsUnlessAsked() throws {
        let scratch = Reranker()
        try scratch.rerank(Self.fourItems(), RerankRequest(k: 3), explain: Self.names)
        #expect(scratch.explanations.count == 3)
        try scratch.rerank(Self.fourItems(), RerankRequest(k: 3))
        #expect(scratch.explanations.isEmpty)
    }

    @Test func baseAndNormalizedRelevance() throws {
        let e = try explain(RerankRequest(k: 4))
        #expect(e.map(\.baseRelevance) == [0.9, 0.8, 0.5, 0.1])
        #expect(e.map(\.boostedRelevance) == [0.9, 0.8, 0.5, 0.1])
        #expect(e[0].normalizedRelevance == 1)
        #expect(abs(e[1].normalizedRelevance - 0.875) < 1e-6)
        #expect(e[3].normalizedRelevance == 0)
    }

    @Test func appliedBoostsListMatchingRulesInOrder() throws {
        let boosts = [
            Boost(.category(2), .multiply(2)), Boost(.anyTag(0b100), .add(0.1)), Boost(.brand(99), .add(5)),
            Boost(.createdWithin(days: 1), .add(0.05)),
        ]
        let e = try explain(RerankRequest(k: 4, rules: RerankRules(boosts: boosts), now: 1_000 + 3_600))
        let row3 = try #require(e.first { $0.row == 3 })
        #expect(row3.appliedBoosts.map(\.ruleIndex) == [0, 1])
        #expect(abs(row3.boostedRelevance - (0.5 * 2 + 0.1)) < 1e-6)
        #expect(row3.baseRelevance == 0.5)
        let row1 = try #require(e.first { $0.row == 1 })
        #expect(row1.appliedBoosts == [.init(ruleIndex: 3, boost: boosts[3])])
        #expect(abs(row1.boostedRelevance - 0.95) < 1e-6)
        #expect(e.first { $0.row == 2 }?.appliedBoosts == [])
    }

    @Test func mmrDiversityPenaltyNamesTheMostSimilarItem() throws {
        let e = try explain(RerankRequest(k: 3, method: .mmr(lambda: 0.5)))
        #expect(e.map(\.row) == [1, 3, 2])
        #expect(e[0].diversity == .mmr(penalty: 0, similarity: 0, mostSimilarRow: nil))
        #expect(e[1].diversity == .mmr(penalty: 0, similarity: 0, mostSimilarRow: 1))
        guard case .mmr(let penalty, let similarity, let mostSimilar) = e[2].diversity else {
            Issue.record("expected an MMR contribution")
            return
        }
        #expect(abs(similarity - 1) < 1e-6)
        #expect(abs(penalty - 0.5) < 1e-6)
        #expect(mostSimilar == 1)
    }

    @Test func dppGainReportsResidualAndLogGain() throws {
        let e = try explain(RerankRequest(k: 3, method: .dpp(theta: 0.5)))
        #expect(e.map(\.row) == [1, 3, 4])
        guard case .dpp(let gain0, let residual0) = e[0].diversity, case .dpp(_, let residual1) = e[1].diversity,
            case .dpp(let gain2, let residual2) = e[2].diversity
        else {
            Issue.record("expected DPP contributions")
            return
        }
        #expect(abs(residual0 - 1.001) < 1e-5, "nothing chosen yet: the jittered kernel diagonal")
        #expect(abs(gain0 - 0.5 * log(1.001)) < 1e-5)
        #expect(abs(residual1 - 1.001) < 1e-3, "orthogonal to row 1")
        // Row 4 has cosine 0.6 with row 3: residual ≈ 1 − 0.36.
        #expect(abs(residual2 - 0.64) < 1e-2)
        #expect(abs(gain2 - 0.5 * log(residual2)) < 1e-5)
    }

    @Test func placementPinned() throws {
        let rules = RerankRules(pins: [Pin(row: 4, position: 0, label: .sponsored), Pin(row: 3, position: 2)])
        let e = try explain(RerankRequest(k: 3, rules: rules))
        #expect(e.map(\.row) == [4, 1, 3])
        #expect(e[0].placement == .pinned(.sponsored))
        #expect(e[2].placement == .pinned(.editorial))
        #expect(e[0].diversity == .none)
    }

    @Test func placementCapReachedNamesTheRuleAndTheBlockedItem() throws {
        let rules = RerankRules(maxPerCategory: 1)
        let e = try explain(RerankRequest(k: 2, rules: rules))
        #expect(e.map(\.row) == [1, 3])
        #expect(e[0].placement == .relevance)
        #expect(e[1].placement == .rule(.categoryCap(category: 1, limit: 1), blockedRow: 2))
    }

    @Test func placementSpreadNamesTheRule() throws {
        let rules = RerankRules(spread: SpreadRule(maxPerWindow: 1, window: 2))
        let e = try explain(RerankRequest(k: 3, rules: rules))
        #expect(e.map(\.row) == [1, 3, 2])
        #expect(e[1].placement == .rule(.spread(category: 1, maxPerWindow: 1, window: 2), blockedRow: 2))
    }

    @Test func placementDiversityNamesTheMoreRelevantItemPassedOver() throws {
        let e = try explain(RerankRequest(k: 2, method: .mmr(lambda: 0.5)))
        #expect(e[0].placement == .relevance)
        #expect(e[1].placement == .diversity(overRow: 2))
    }

    @Test func reasonsFollowTheQueryOriginAndQualifiers() throws {
        let boosts = [Boost(.createdWithin(days: 1), .add(0.05)), Boost(.brand(7), .multiply(1.1))]
        let rules = RerankRules(boosts: boosts, pins: [Pin(row: 4, position: 3, label: .sponsored)])
        let request = RerankRequest(k: 4, method: .mmr(lambda: 0.5), rules: rules, now: 2_000)
        let popular = try explain(request)
        #expect(
            popular.map(\.reason) == [
                "Popular in Running Shoes · new arrival", "Popular in Jackets · adds variety",
                "Popular in Running Shoes",
                "Sponsored",
            ])
        var context = Self.names
        context.origin = .recentlyViewed
        #expect(try explain(request, context)[2].reason == "Similar to items you viewed recently")
        context.origin = .userProfile
        #expect(try explain(request, context)[1].reason == "Matches your interest in Jackets · adds variety")
        context.categoryName = { _ in nil }
        #expect(try explain(request, context)[2].reason == "Picked for you")
        var brand = Self.names
        brand.origin = .userProfile
        let branded = RerankRequest(k: 1, rules: RerankRules(boosts: [boosts[1]]))
        #expect(try explain(branded, brand)[0].reason == "Matches your interest in Running Shoes · featured brand Acme")
        let editorial = RerankRequest(k: 1, rules: RerankRules(pins: [Pin(row: 2, position: 0)]))
        #expect(try explain(editorial)[0].reason == "Editor's pick")
    }
}

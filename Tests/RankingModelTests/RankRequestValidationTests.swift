import RankingModel
import TestSupport
import Testing

/// Every field of a Rank request is validated and a bad one is named in the error.
@Suite struct RankRequestValidationTests {
    func expectInvalid(_ mutate: (inout RankRequest) -> Void, naming field: String, k: Int = 20) {
        var request = RankRequest()
        mutate(&request)
        do {
            try request.validate(effectiveK: request.k == 0 ? k : request.k)
            Issue.record("expected INVALID_ARGUMENT naming \(field)")
        } catch {
            #expect(error.message.contains(field), "\(error.message) should name \(field)")
        }
    }

    @Test func fullRequestIsValid() throws {
        try RankRequest.everyFieldSet.validate(effectiveK: 25)
    }

    @Test func defaultRequestIsValid() throws {
        try RankRequest().validate(effectiveK: 20)
    }

    @Test func rejectsEachOutOfRangeField() {
        expectInvalid({ $0.k = 1001 }, naming: "k")
        expectInvalid({ $0.candidatePool = 5001 }, naming: "candidate_pool")
        expectInvalid(
            {
                $0.k = 50; $0.candidatePool = 10
            }, naming: "candidate_pool")
        expectInvalid({ $0.userID = String(repeating: "u", count: 300) }, naming: "user_id")
        expectInvalid({ $0.recentItemIDs = Array(repeating: "a", count: 101) }, naming: "recent_item_ids")
        expectInvalid({ $0.recentItemIDs = ["a", ""] }, naming: "recent_item_ids[1]")
        expectInvalid({ $0.diversity.tradeoff = 1.5 }, naming: "diversity.tradeoff")
        expectInvalid({ $0.rotation = .init(rate: 1.5) }, naming: "rotation.rate")
        expectInvalid({ $0.rotation = .init(rate: .nan) }, naming: "rotation.rate")
        expectInvalid({ $0.rotation = .init(windowSeconds: 31 * 86_400) }, naming: "rotation.window_seconds")
        expectInvalid(
            { $0.frequencyCaps = [.init(maxImpressions: 0, windowSeconds: 60)] },
            naming: "frequency_caps[0].max_impressions")
        expectInvalid(
            {
                $0.frequencyCaps = [
                    .init(maxImpressions: 1, windowSeconds: 60), .init(maxImpressions: 1, windowSeconds: 0),
                ]
            },
            naming: "frequency_caps[1].window_seconds")
        expectInvalid(
            { $0.frequencyCaps = Array(repeating: .init(maxImpressions: 1, windowSeconds: 60), count: 17) },
            naming: "frequency_caps")
        expectInvalid(
            { $0.filter.excludePurchasedWithinSeconds = 31 * 86_400 }, naming: "filter.exclude_purchased_within_seconds"
        )
        expectInvalid({ $0.diversity.tradeoff = .nan }, naming: "diversity.tradeoff")
        expectInvalid({ $0.diversity.spreadWindow = 3 }, naming: "spread_window")
        expectInvalid(
            {
                $0.diversity.spreadWindow = 3; $0.diversity.spreadMaxPerCategory = 3
            }, naming: "spread_max_per_category")
        expectInvalid(
            {
                $0.filter.minPrice = 10; $0.filter.maxPrice = 5
            }, naming: "min_price")
        expectInvalid({ $0.filter.minPrice = -1 }, naming: "filter.min_price")
        expectInvalid(
            {
                $0.filter.includeCategories = ["A"]; $0.filter.excludeCategories = ["A"]
            }, naming: "include_categories")
        expectInvalid(
            {
                $0.filter.includeBrands = ["B"]; $0.filter.excludeBrands = ["B"]
            }, naming: "include_brands")
        expectInvalid({ $0.boosts = [.init(target: .category("A"), multiply: 0)] }, naming: "boosts[0].multiply")
        expectInvalid({ $0.boosts = [.init(target: .tag(""))] }, naming: "boosts[0]")
        expectInvalid({ $0.boosts = [.init(target: .freshWithinDays(0))] }, naming: "fresh_within_days")
        expectInvalid({ $0.pins = [.init(itemID: "x", position: 20)] }, naming: "pins[0].position")
        expectInvalid(
            { $0.pins = [.init(itemID: "x", position: 1), .init(itemID: "y", position: 1)] }, naming: "pins[1].position"
        )
        expectInvalid(
            { $0.pins = [.init(itemID: "x", position: 1), .init(itemID: "x", position: 2)] }, naming: "pins[1].item_id")
        expectInvalid(
            { $0.context = Dictionary(uniqueKeysWithValues: (0..<33).map { ("k\($0)", "v") }) }, naming: "context")
    }
}

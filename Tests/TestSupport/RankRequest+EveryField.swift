public import RankingModel

extension RankRequest {
    /// A request with every field set to a valid, non-default value (codec round trips, validation).
    public static var everyFieldSet: RankRequest {
        var request = RankRequest()
        request.userID = "u_42"
        request.k = 25
        request.recentItemIDs = ["sku-9", "sku-3"]
        request.candidatePool = 400
        request.filter.includeCategories = ["Running Shoes"]
        request.filter.excludeBrands = ["Acme"]
        request.filter.inStockOnly = true
        request.filter.minPrice = 0
        request.filter.maxPrice = 99.5
        request.filter.tagsAny = ["sale"]
        request.filter.excludeItemIDs = ["sku-1"]
        request.diversity.method = .dpp
        request.diversity.tradeoff = 0
        request.diversity.maxPerCategory = 3
        request.diversity.spreadWindow = 4
        request.diversity.spreadMaxPerCategory = 2
        request.boosts = [
            .init(target: .category("Trail"), multiply: 1.5), .init(target: .freshWithinDays(7), add: 0.1),
            .init(target: .itemID("sku-7"), multiply: 0.5, add: -1),
        ]
        request.pins = [.init(itemID: "sku-ad", position: 0)]
        request.explain = true
        request.consent = .none
        request.experimentArm = "treatment"
        request.context = ["channel": "web", "device": "ios"]
        request.filter.excludePurchasedWithinSeconds = 86_400
        request.rotation = .init(rate: 0.25, windowSeconds: 3600)
        request.frequencyCaps = [
            .init(maxImpressions: 3, windowSeconds: 86_400),
            .init(maxImpressions: 5, windowSeconds: 600, scope: .category),
        ]
        request.ignoreEventHistory = true
        return request
    }
}

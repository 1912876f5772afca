import GRPCCore
import NIOCore
import RankingModel
import Testing

@testable import RankingAPI

@Suite struct RankCodecTests {
    static func fullRequest() -> RankRequest {
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
        return request
    }

    @Test func requestRoundTripsEveryField() throws {
        let request = Self.fullRequest()
        #expect(try RankCodec.decodeRequest(RankCodec.encodeRequest(request)) == request)
    }

    @Test func unsetOptionalNumbersStayUnset() throws {
        var request = RankRequest()
        request.diversity.method = .mmr
        let decoded = try RankCodec.decodeRequest(RankCodec.encodeRequest(request))
        #expect(decoded.diversity.tradeoff == nil)
        #expect(decoded.filter.minPrice == nil && decoded.filter.maxPrice == nil)
        #expect(decoded.experimentArm == nil)
    }

    @Test func emptyBodyIsTheDefaultRequest() throws {
        #expect(try RankCodec.decodeRequest(ByteBuffer()) == RankRequest())
    }

    @Test func responseRoundTripsEveryField() throws {
        var response = RankResponse()
        var explanation = RankResponse.Explanation()
        explanation.baseRelevance = 0.8
        explanation.boostedRelevance = 1.2
        explanation.appliedBoosts = ["category Trail ×1.5"]
        explanation.diversityPenalty = 0.1
        explanation.dppGain = 0.3
        explanation.rule = "mmr"
        explanation.constraints = ["cap reached for Running Shoes"]
        explanation.reason = "similar to items you viewed recently"
        response.items = [
            .init(itemID: "sku-1", score: 1.5, position: 0, category: "Trail", brand: "B", explanation: explanation),
            .init(itemID: "sku-2", score: 0.5, position: 1),
        ]
        response.snapshotVersion = "v2026-11-22"
        response.strategy = .blended
        response.experiment = "exp1"
        response.experimentArm = "control"
        response.degraded = true
        response.degradedReason = "deadline"
        response.fewerThanK = true
        response.droppedPins = [.init(itemID: "sku-x", position: 2, reason: "out of stock")]
        response.unknownItemIDs = ["nope"]
        response.candidatesConsidered = 300
        #expect(try RankCodec.decodeResponse(RankCodec.encodeResponse(response)) == response)
    }

    @Test func everyStrategyRoundTrips() throws {
        for strategy in RankResponse.Strategy.allCases {
            var response = RankResponse()
            response.strategy = strategy
            #expect(try RankCodec.decodeResponse(RankCodec.encodeResponse(response)).strategy == strategy)
        }
    }

    @Test func malformedBytesAreInvalidArgumentNamingTheMessage() {
        do {
            _ = try RankCodec.decodeRequest(ByteBuffer(bytes: [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("ranking.v1.RankRequest"))
        }
    }

    @Test func truncatedEncodingIsRejectedAtEveryLength() {
        let bytes = Array(RankCodec.encodeRequest(Self.fullRequest()).readableBytesView)
        var rejected = 0
        for length in 1..<bytes.count {
            if (try? RankCodec.decodeRequest(ByteBuffer(bytes: bytes[0..<length]))) == nil { rejected += 1 }
        }
        // Most prefixes end inside a field; the ones that end on a field boundary are valid messages.
        #expect(rejected > bytes.count / 2)
    }
}

@Suite struct RankValidationTests {
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
        try RankCodecTests.fullRequest().validate(effectiveK: 25)
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

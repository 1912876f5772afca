import GRPCCore
import NIOCore
import RankingModel
import TestSupport
import Testing

@testable import RankingAPI

@Suite struct RankCodecTests {
    @Test func requestRoundTripsEveryField() throws {
        let request = RankRequest.everyFieldSet
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
        explanation.rotationPenalty = 0.19
        explanation.recentImpressions = 2
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
        response.sessionSource = .eventHistory
        response.eventExclusions = [
            .init(itemID: "sku-3", reason: "purchased 5 s ago"), .init(category: "Trail", reason: "frequency cap"),
        ]
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
        let bytes = Array(RankCodec.encodeRequest(RankRequest.everyFieldSet).readableBytesView)
        var rejected = 0
        for length in 1..<bytes.count {
            if (try? RankCodec.decodeRequest(ByteBuffer(bytes: bytes[0..<length]))) == nil { rejected += 1 }
        }
        // Most prefixes end inside a field; the ones that end on a field boundary are valid messages.
        #expect(rejected > bytes.count / 2)
    }
}

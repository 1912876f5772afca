import GRPCCore
import NIOCore
import RankingAPI
import RankingModel
import Testing

@Suite struct EventCodecTests {
    @Test func recordEventsRoundTripsEveryFieldAndPresence() throws {
        let request = RecordEventsRequest(events: [
            RecordedEvent(
                userID: "u_1", itemID: "sku-1", kind: .impression, timestampMilliseconds: 1_800_000_000_123, weight: 2,
                consent: .full),
            RecordedEvent(userID: "u_2", itemID: "sku-2", kind: .click),
            RecordedEvent(userID: "u_2", itemID: "sku-3", kind: .addToCart, consent: .none),
            RecordedEvent(userID: "u_3", itemID: "sku-4", kind: .purchase),
            RecordedEvent(userID: "u_3", itemID: "sku-5", kind: .custom),
        ])
        #expect(try EventCodec.decodeRequest(EventCodec.encodeRequest(request)) == request)
        let result = RecordEventsResult(recorded: 3, unknownItems: 1, skippedNoConsent: 1)
        #expect(try EventCodec.decodeResponse(EventCodec.encodeResponse(result)) == result)
    }

    @Test func unknownTypeIsKeptForValidationAndOversizedBatchIsRefused() throws {
        let request = RecordEventsRequest(events: [RecordedEvent(userID: "u", itemID: "i", kind: .unknown(42))])
        #expect(try EventCodec.decodeRequest(EventCodec.encodeRequest(request)).events.first?.kind == .unknown(42))
        let big = RecordEventsRequest(
            events: Array(repeating: RecordedEvent(userID: "u", itemID: "i", kind: .click), count: 10_001))
        do {
            _ = try EventCodec.decodeRequest(EventCodec.encodeRequest(big))
            Issue.record("an oversized batch must be refused")
        } catch {
            #expect(error.code == .invalidArgument && error.message.hasPrefix("events[10000]"))
        }
    }
}

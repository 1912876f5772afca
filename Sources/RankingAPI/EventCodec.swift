import CProtobufC
public import GRPCCore
public import NIOCore
public import RankingModel
import RankingProtos

/// `RecordEventsRequest` / `RecordEventsResponse` (`ranking.v1.Ranker/RecordEvents` and `StreamEvents`)
/// ⇄ Swift values.
public enum EventCodec {
    /// Decodes a batch. More than ``RecordEventsRequest/maxEvents`` events is `INVALID_ARGUMENT` before any
    /// is decoded; the values are checked by ``RecordEventsRequest/validate(nowMilliseconds:)``.
    public static func decodeRequest(_ buffer: ByteBuffer) throws(GRPCStatus) -> RecordEventsRequest {
        let arena = CArena(blockSize: 64 * 1024)
        return try ProtobufCodec.decode(buffer, initializer: ranking__v1__record_events_request__init, arena: arena) {
            (message) throws(GRPCStatus) -> RecordEventsRequest in
            let m = message.pointee
            guard m.n_events <= RecordEventsRequest.maxEvents else {
                throw GRPCStatus(
                    .invalidArgument,
                    "events[\(RecordEventsRequest.maxEvents)]: a batch holds at most \(RecordEventsRequest.maxEvents) events, got \(m.n_events)"
                )
            }
            var request = RecordEventsRequest()
            request.events.reserveCapacity(m.n_events)
            for index in 0..<m.n_events {
                guard let e = m.events[index]?.pointee else { continue }
                let kind: RecordedEvent.Kind =
                    switch e.type {
                    case RANKING__V1__EVENT_TYPE__EVENT_TYPE_IMPRESSION: .impression
                    case RANKING__V1__EVENT_TYPE__EVENT_TYPE_CLICK: .click
                    case RANKING__V1__EVENT_TYPE__EVENT_TYPE_ADD_TO_CART: .addToCart
                    case RANKING__V1__EVENT_TYPE__EVENT_TYPE_PURCHASE: .purchase
                    case RANKING__V1__EVENT_TYPE__EVENT_TYPE_CUSTOM: .custom
                    default: .unknown(Int(e.type.rawValue))
                    }
                let consent: RankRequest.Consent
                switch e.consent {
                case RANKING__V1__CONSENT__CONSENT_NONE: consent = .none
                case RANKING__V1__CONSENT__CONSENT_FULL, RANKING__V1__CONSENT__CONSENT_UNSPECIFIED: consent = .full
                default:
                    throw GRPCStatus(.invalidArgument, "events[\(index)].consent: unknown value \(e.consent.rawValue)")
                }
                request.events.append(
                    RecordedEvent(
                        userID: ProtobufCodec.string(e.user_id), itemID: ProtobufCodec.string(e.item_id), kind: kind,
                        timestampMilliseconds: e.timestamp_ms, weight: e.weight?.pointee.value, consent: consent))
            }
            return request
        }
    }

    /// Encodes a batch (client side).
    public static func encodeRequest(_ request: RecordEventsRequest, allocator: ByteBufferAllocator = .init())
        -> ByteBuffer
    {
        let arena = CArena(blockSize: 64 * 1024)
        let m = arena.allocate(Ranking__V1__RecordEventsRequest.self)
        ranking__v1__record_events_request__init(m)
        let events = arena.allocate(UnsafeMutablePointer<Ranking__V1__Event>?.self, count: request.events.count)
        for (index, event) in request.events.enumerated() {
            let e = arena.allocate(Ranking__V1__Event.self)
            ranking__v1__event__init(e)
            e.pointee.user_id = arena.cString(event.userID)
            e.pointee.item_id = arena.cString(event.itemID)
            e.pointee.type =
                switch event.kind {
                case .impression: RANKING__V1__EVENT_TYPE__EVENT_TYPE_IMPRESSION
                case .click: RANKING__V1__EVENT_TYPE__EVENT_TYPE_CLICK
                case .addToCart: RANKING__V1__EVENT_TYPE__EVENT_TYPE_ADD_TO_CART
                case .purchase: RANKING__V1__EVENT_TYPE__EVENT_TYPE_PURCHASE
                case .custom: RANKING__V1__EVENT_TYPE__EVENT_TYPE_CUSTOM
                case .unknown(let value): Ranking__V1__EventType(rawValue: UInt32(truncatingIfNeeded: value))
                }
            e.pointee.timestamp_ms = event.timestampMilliseconds
            e.pointee.weight = event.weight.map { RankCodec.floatValue($0, arena) }
            e.pointee.consent =
                event.consent == .none ? RANKING__V1__CONSENT__CONSENT_NONE : RANKING__V1__CONSENT__CONSENT_FULL
            events[index] = e
        }
        (m.pointee.n_events, m.pointee.events) = (request.events.count, events)
        return ProtobufCodec.encode(m, allocator: allocator)
    }

    /// Encodes the response (server side).
    public static func encodeResponse(_ result: RecordEventsResult, allocator: ByteBufferAllocator = .init())
        -> ByteBuffer
    {
        var m = Ranking__V1__RecordEventsResponse()
        ranking__v1__record_events_response__init(&m)
        m.recorded = UInt64(result.recorded)
        m.unknown_items = UInt64(result.unknownItems)
        m.skipped_no_consent = UInt64(result.skippedNoConsent)
        return withUnsafePointer(to: &m) { ProtobufCodec.encode($0, allocator: allocator) }
    }

    /// Decodes the response (client side).
    public static func decodeResponse(_ buffer: ByteBuffer) throws(GRPCStatus) -> RecordEventsResult {
        try ProtobufCodec.decode(buffer, initializer: ranking__v1__record_events_response__init) {
            (message) throws(GRPCStatus) -> RecordEventsResult in
            RecordEventsResult(
                recorded: Int(message.pointee.recorded), unknownItems: Int(message.pointee.unknown_items),
                skippedNoConsent: Int(message.pointee.skipped_no_consent))
        }
    }
}

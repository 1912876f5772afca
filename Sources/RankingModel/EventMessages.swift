/// `ranking.v1.Event` as a Swift value.
public struct RecordedEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case impression, click, addToCart, purchase, custom
        /// A wire value the API does not define (rejected by validation, naming the value).
        case unknown(Int)
    }

    public var userID: String
    public var itemID: String
    public var kind: Kind
    /// Unix milliseconds; 0: when the server receives it.
    public var timestampMilliseconds: Int64
    /// `nil`: 1.
    public var weight: Float?
    public var consent: RankRequest.Consent

    public init(
        userID: String, itemID: String, kind: Kind, timestampMilliseconds: Int64 = 0, weight: Float? = nil,
        consent: RankRequest.Consent = .full
    ) {
        self.userID = userID
        self.itemID = itemID
        self.kind = kind
        self.timestampMilliseconds = timestampMilliseconds
        self.weight = weight
        self.consent = consent
    }
}

/// `ranking.v1.RecordEventsRequest`.
public struct RecordEventsRequest: Sendable, Equatable {
    /// Events per call (or per stream message) at most.
    public static let maxEvents = 10_000
    /// How far ahead of the server's clock a timestamp may be (clock skew between services).
    public static let maxFutureMilliseconds: Int64 = 5 * 60 * 1000
    public static let maxIDBytes = 256

    public var events: [RecordedEvent]

    public init(events: [RecordedEvent] = []) { self.events = events }

    /// Checks every event; `nowMilliseconds` is the server's clock.
    ///
    /// - Throws: ``RankRequestError`` naming the event (`events[i].field`) and the rule.
    public func validate(nowMilliseconds: Int64) throws(RankRequestError) {
        guard events.count <= Self.maxEvents else {
            throw RankRequestError(
                "events[\(Self.maxEvents)]: a batch holds at most \(Self.maxEvents) events, got \(events.count)")
        }
        for (index, event) in events.enumerated() {
            func invalid(_ field: String, _ message: String) -> RankRequestError {
                RankRequestError("events[\(index)].\(field): \(message)")
            }
            if event.userID.isEmpty { throw invalid("user_id", "must not be empty") }
            if event.userID.utf8.count > Self.maxIDBytes {
                throw invalid("user_id", "longer than \(Self.maxIDBytes) bytes")
            }
            if event.itemID.isEmpty { throw invalid("item_id", "must not be empty") }
            if event.itemID.utf8.count > Self.maxIDBytes {
                throw invalid("item_id", "longer than \(Self.maxIDBytes) bytes")
            }
            if case .unknown(let value) = event.kind {
                throw invalid("type", "unknown event type \(value) (impression, click, add_to_cart, purchase, custom)")
            }
            if event.timestampMilliseconds < 0 {
                throw invalid("timestamp_ms", "must not be negative, got \(event.timestampMilliseconds)")
            }
            if event.timestampMilliseconds > nowMilliseconds + Self.maxFutureMilliseconds {
                throw invalid(
                    "timestamp_ms",
                    "\((event.timestampMilliseconds - nowMilliseconds) / 1000) s in the future (at most \(Self.maxFutureMilliseconds / 1000) s ahead of the server)"
                )
            }
            // Unix seconds are stored in 32 bits (until 2106).
            if event.timestampMilliseconds / 1000 > Int64(UInt32.max) {
                throw invalid("timestamp_ms", "after 2106")
            }
            if let weight = event.weight, !(weight.isFinite && weight > 0) {
                throw invalid("weight", "must be a finite number > 0, got \(weight)")
            }
        }
    }
}

/// `ranking.v1.RecordEventsResponse`.
public struct RecordEventsResult: Sendable, Equatable {
    public var recorded = 0
    public var unknownItems = 0
    public var skippedNoConsent = 0

    public init(recorded: Int = 0, unknownItems: Int = 0, skippedNoConsent: Int = 0) {
        self.recorded = recorded
        self.unknownItems = unknownItems
        self.skippedNoConsent = skippedNoConsent
    }

    public static func += (lhs: inout RecordEventsResult, rhs: RecordEventsResult) {
        lhs.recorded += rhs.recorded
        lhs.unknownItems += rhs.unknownItems
        lhs.skippedNoConsent += rhs.skippedNoConsent
    }
}

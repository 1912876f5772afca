import Foundation
public import LiveState
public import RankingModel
public import UserEvents

extension RankingEngine {
    /// Validates a batch of events and records those with consent about items the active snapshot knows.
    ///
    /// - Parameter nowMilliseconds: the server's clock (default: now): events without a timestamp happen
    ///   then, and timestamps more than 5 minutes past it are refused.
    /// - Returns: how many were recorded, how many named unknown items, how many had consent NONE (neither
    ///   kind is stored: consent NONE never writes).
    /// - Throws: ``RankError``: `invalidArgument` naming `events[i]` (nothing of the batch is recorded),
    ///   `unavailable` when events are off (no store) or no snapshot is active yet.
    ///
    /// Thread-safe; takes one shard lock per event, briefly (see ``UserEventStore``).
    public func record(_ request: RecordEventsRequest, nowMilliseconds: Int64? = nil) throws(RankError)
        -> RecordEventsResult
    {
        guard let events else { throw .unavailable("events are not recorded by this server (--event-budget-mib 0)") }
        let now = nowMilliseconds ?? Int64(Date().timeIntervalSince1970 * 1000)
        do {
            try request.validate(nowMilliseconds: now)
        } catch {
            throw .invalidArgument(error.message)
        }
        guard let serving = registry.current() else {
            throw .unavailable("no snapshot is active yet: items cannot be resolved")
        }
        var result = RecordEventsResult()
        for event in request.events {
            guard event.consent == .full else {
                result.skippedNoConsent += 1
                continue
            }
            let item = EventKey.item(event.itemID)
            guard serving.itemKeys.row(for: item) != nil else {
                result.unknownItems += 1
                continue
            }
            let type: EventType =
                switch event.kind {
                case .impression: .impression
                case .click: .click
                case .addToCart: .addToCart
                case .purchase: .purchase
                case .custom, .unknown: .custom
                }
            let milliseconds = event.timestampMilliseconds == 0 ? now : event.timestampMilliseconds
            events.record(
                userKey: EventKey.user(event.userID), itemKey: item, type: type, time: UInt32(milliseconds / 1000),
                weight: event.weight ?? 1)
            result.recorded += 1
        }
        events.publishMetrics()
        return result
    }
}

/// Purges a user's recorded events when `DeleteUser` deletes them: register it with
/// ``LiveOverlay/addPurger(_:)``.
public final class UserEventPurger: UserStatePurging {
    let store: UserEventStore

    public init(_ store: UserEventStore) { self.store = store }

    public func purgeUser(_ userID: String) { store.purge(userID: userID) }
}

import Foundation
import RankingModel
import SnapshotLifecycle
import Testing
import UserEvents

@testable import RankingEngine

/// Recorded events as Rank reads them: session history, rotation, frequency caps, exclude-purchased,
/// consent NONE, purge; and RecordEvents' validation.
@Suite struct UserEventsRankTests {
    let fixture = EngineFixture.shared
    let now: Int64 = 1_800_000_000
    var nowMilliseconds: Int64 { now * 1000 }

    /// An engine over the shared fixture snapshot with an empty event store of its own.
    func engine() -> (RankingEngine, UserEventStore) {
        let store = UserEventStore(budgetBytes: 1 << 20, shardCount: 4)
        return (RankingEngine(registry: SnapshotRegistry(fixture.serving), events: store), store)
    }

    func record(
        _ engine: RankingEngine, _ user: String, _ items: [String], _ kind: RecordedEvent.Kind, secondsAgo: Int64 = 0
    ) throws {
        let events = items.map {
            RecordedEvent(userID: user, itemID: $0, kind: kind, timestampMilliseconds: (now - secondsAgo) * 1000)
        }
        let result = try engine.record(RecordEventsRequest(events: events), nowMilliseconds: nowMilliseconds)
        #expect(result.recorded == items.count)
    }

    func rank(_ engine: RankingEngine, _ configure: (inout RankRequest) -> Void = { _ in }) throws -> RankResponse {
        var request = RankRequest()
        request.userID = "u_3"
        request.k = 10
        request.explain = true
        request.diversity.method = .none
        configure(&request)
        return try engine.rank(request, now: now)
    }

    @Test func recordedInteractionsAreTheSessionWhenTheRequestSendsNone() throws {
        let (engine, _) = engine()
        let visitor: (inout RankRequest) -> Void = { $0.userID = "visitor-1" }
        #expect(try rank(engine, visitor).strategy == .popular)
        #expect(try rank(engine, visitor).sessionSource == .none)
        try record(engine, "visitor-1", ["sku-5", "sku-9"], .click)
        let fromHistory = try rank(engine, visitor)
        #expect(fromHistory.strategy == .session)
        #expect(fromHistory.sessionSource == .eventHistory)
        // The same items sent in the request give the same query: history is newest first.
        let sent = try rank(engine) {
            $0.userID = "visitor-1"
            $0.recentItemIDs = ["sku-9", "sku-5"]
        }
        #expect(sent.sessionSource == .request)
        #expect(sent.items.map(\.itemID) == fromHistory.items.map(\.itemID))
        // The request's own list wins; an opt-out ignores the history.
        let own = try rank(engine) {
            $0.userID = "visitor-1"
            $0.recentItemIDs = ["sku-100"]
        }
        #expect(own.sessionSource == .request && own.items.map(\.itemID) != fromHistory.items.map(\.itemID))
        let optedOut = try rank(engine) {
            $0.userID = "visitor-1"
            $0.ignoreEventHistory = true
        }
        #expect(optedOut.strategy == .popular && optedOut.sessionSource == .none)
        // A known user with history is blended.
        try record(engine, "u_3", ["sku-5"], .addToCart)
        #expect(try rank(engine).strategy == .blended)
        // Interactions older than the history window (a day by default) are not a session.
        try record(engine, "visitor-2", ["sku-5"], .click, secondsAgo: 2 * 86_400)
        #expect(try rank(engine) { $0.userID = "visitor-2" }.sessionSource == .none)
    }

    @Test func rotationPenalisesItemsShownRecentlyAndFades() throws {
        let (engine, _) = engine()
        let before = try rank(engine)
        let top = try #require(before.items.first)
        #expect(top.explanation?.rotationPenalty == 0)
        try record(engine, "u_3", [top.itemID], .impression)
        let after = try rank(engine)
        let shown = try #require(after.items.first { $0.itemID == top.itemID })
        // Default rate 0.1, shown just now: 10% of its relevance.
        #expect(abs((shown.explanation?.rotationPenalty ?? 0) - 0.1) < 1e-5)
        #expect(shown.explanation?.recentImpressions == 1)
        #expect(shown.score < top.score)
        // Rate 1: an item shown just now loses all of its relevance and leaves the top.
        let full = try rank(engine) { $0.rotation = .init(rate: 1) }
        #expect(full.items.first?.itemID != top.itemID)
        // Rate 0 turns rotation off for the call.
        let off = try rank(engine) { $0.rotation = .init(rate: 0) }
        #expect(off.items.map(\.itemID) == before.items.map(\.itemID))
        #expect(off.items.allSatisfy { $0.explanation?.rotationPenalty == 0 })
        // Half a window ago: half the penalty; a window ago: none.
        let (older, _) = self.engine()
        try record(older, "u_3", [top.itemID], .impression, secondsAgo: 3600)
        let faded = try rank(older).items.first { $0.itemID == top.itemID }
        #expect(abs((faded?.explanation?.rotationPenalty ?? 0) - 0.05) < 1e-5)
        let (oldest, _) = self.engine()
        try record(oldest, "u_3", [top.itemID], .impression, secondsAgo: 7200)
        #expect(try rank(oldest).items.first { $0.itemID == top.itemID }?.explanation?.rotationPenalty == 0)
    }

    @Test func frequencyCapFiltersTheItemAndSaysWhy() throws {
        let (engine, _) = engine()
        let top = try #require(try rank(engine).items.first).itemID
        try record(engine, "u_3", [top, top, top], .impression, secondsAgo: 60)
        let capped = try rank(engine) { $0.frequencyCaps = [.init(maxImpressions: 3, windowSeconds: 3600)] }
        #expect(!capped.items.contains { $0.itemID == top })
        #expect(capped.items.count == 10)
        let exclusion = try #require(capped.eventExclusions.first)
        #expect(exclusion.itemID == top)
        #expect(exclusion.reason == "frequency cap: 3 impressions in 3600 s (max 3)")
        // Under the cap, or outside its window: served.
        #expect(
            try rank(engine) { $0.frequencyCaps = [.init(maxImpressions: 4, windowSeconds: 3600)] }.items
                .contains { $0.itemID == top })
        #expect(
            try rank(engine) { $0.frequencyCaps = [.init(maxImpressions: 3, windowSeconds: 30)] }.items
                .contains { $0.itemID == top })
        // A capped item cannot be pinned either, and the dropped pin says why.
        let pinned = try rank(engine) {
            $0.frequencyCaps = [.init(maxImpressions: 3, windowSeconds: 3600)]
            $0.pins = [.init(itemID: top, position: 0)]
        }
        #expect(pinned.droppedPins.first?.reason.hasPrefix("frequency cap") == true)
    }

    @Test func categoryCapFiltersEveryItemOfTheCategory() throws {
        let (engine, _) = engine()
        let first = try #require(try rank(engine).items.first)
        let category = first.category
        let sameCategory = try rank(engine) {
            $0.filter.includeCategories = [category]
            $0.k = 2
        }.items.map(\.itemID)
        try record(engine, "u_3", sameCategory, .impression, secondsAgo: 10)
        let capped = try rank(engine) {
            $0.frequencyCaps = [.init(maxImpressions: 2, windowSeconds: 600, scope: .category)]
            $0.k = 30
        }
        #expect(!capped.items.isEmpty)
        #expect(!capped.items.contains { $0.category == category })
        #expect(capped.eventExclusions.contains { $0.category == category && $0.reason.contains("2 impressions") })
    }

    @Test func excludePurchasedWithinTheWindow() throws {
        let (engine, _) = engine()
        let top = try #require(try rank(engine).items.first).itemID
        try record(engine, "u_3", [top], .purchase, secondsAgo: 100)
        #expect(try rank(engine).items.contains { $0.itemID == top })
        let excluded = try rank(engine) { $0.filter.excludePurchasedWithinSeconds = 3600 }
        #expect(!excluded.items.contains { $0.itemID == top })
        #expect(excluded.eventExclusions == [.init(itemID: top, reason: "purchased 100 s ago")])
        #expect(try rank(engine) { $0.filter.excludePurchasedWithinSeconds = 50 }.items.contains { $0.itemID == top })
    }

    @Test func consentNoneNeverReadsNorWritesEvents() throws {
        let (engine, store) = engine()
        let top = try #require(try rank(engine).items.first).itemID
        try record(engine, "u_3", [top, top], .impression)
        try record(engine, "u_3", [top], .purchase)
        let anonymous = try rank(engine) {
            $0.consent = .none
            $0.frequencyCaps = [.init(maxImpressions: 1, windowSeconds: 3600)]
            $0.filter.excludePurchasedWithinSeconds = 3600
        }
        #expect(anonymous.sessionSource == .none && anonymous.strategy == .nonPersonalized)
        #expect(anonymous.eventExclusions.isEmpty)
        #expect(anonymous.items.allSatisfy { $0.explanation?.rotationPenalty == 0 })
        let users = store.users
        let result = try engine.record(
            RecordEventsRequest(events: [
                RecordedEvent(userID: "private", itemID: top, kind: .click, consent: .none)
            ]), nowMilliseconds: nowMilliseconds)
        #expect(result == RecordEventsResult(recorded: 0, unknownItems: 0, skippedNoConsent: 1))
        #expect(store.users == users)
    }

    @Test func deleteUserPurgeForgetsEverything() throws {
        let (engine, store) = engine()
        try record(engine, "visitor-9", ["sku-5"], .click)
        #expect(try rank(engine) { $0.userID = "visitor-9" }.sessionSource == .eventHistory)
        UserEventPurger(store).purgeUser("visitor-9")
        #expect(try rank(engine) { $0.userID = "visitor-9" }.sessionSource == .none)
    }

    @Test func recordRefusesBadEventsNamingTheIndexAndCountsUnknownItems() throws {
        let (engine, store) = engine()
        func refusal(_ events: [RecordedEvent]) -> String? {
            do {
                _ = try engine.record(RecordEventsRequest(events: events), nowMilliseconds: nowMilliseconds)
                return nil
            } catch {
                guard case .invalidArgument(let message) = error else { return "wrong code: \(error)" }
                return message
            }
        }
        let good = RecordedEvent(userID: "u_1", itemID: "sku-1", kind: .click)
        var unknownType = good
        unknownType.kind = .unknown(9)
        #expect(refusal([good, good, unknownType])?.hasPrefix("events[2].type: unknown event type 9") == true)
        var future = good
        future.timestampMilliseconds = nowMilliseconds + 3_600_000
        #expect(refusal([future])?.hasPrefix("events[0].timestamp_ms: 3600 s in the future") == true)
        var noUser = good
        noUser.userID = ""
        #expect(refusal([good, noUser]) == "events[1].user_id: must not be empty")
        var badWeight = good
        badWeight.weight = -1
        #expect(refusal([badWeight])?.hasPrefix("events[0].weight") == true)
        #expect(
            refusal(Array(repeating: good, count: RecordEventsRequest.maxEvents + 1))?.hasPrefix("events[10000]")
                == true)
        // A refused batch records nothing.
        #expect(store.users == 0)
        var unknownItem = good
        unknownItem.itemID = "no-such-sku"
        let result = try engine.record(
            RecordEventsRequest(events: [good, unknownItem]), nowMilliseconds: nowMilliseconds)
        #expect(result == RecordEventsResult(recorded: 1, unknownItems: 1, skippedNoConsent: 0))
    }

    @Test func withoutAStoreRecordIsUnavailableAndRankIgnoresEventRules() throws {
        let engine = RankingEngine(registry: SnapshotRegistry(fixture.serving))
        #expect(throws: RankError.self) {
            try engine.record(RecordEventsRequest(events: []), nowMilliseconds: nowMilliseconds)
        }
        let response = try rank(engine) { $0.frequencyCaps = [.init(maxImpressions: 1, windowSeconds: 60)] }
        #expect(response.items.count == 10 && response.sessionSource == .none)
    }
}

import Testing

@testable import UserEvents

@Suite struct UserEventStoreTests {
    /// A store with exactly `perShard` users per shard.
    func store(perShard: Int, shards: Int = 1) -> UserEventStore {
        UserEventStore(budgetBytes: perShard * shards * UserEventStore.bytesPerUser, shardCount: shards)
    }

    @Test func readsBackImpressionsAndInteractionsNewestFirst() {
        let store = store(perShard: 4)
        let user = EventKey.user("u1")
        store.record(userKey: user, itemKey: 10, type: .impression, time: 100)
        store.record(userKey: user, itemKey: 11, type: .click, time: 101, weight: 2.5)
        store.record(userKey: user, itemKey: 12, type: .impression, time: 102)
        store.record(userKey: user, itemKey: 13, type: .purchase, time: 103)
        var view = UserEventView()
        #expect(store.read(userKey: user, into: &view))
        #expect(view.impressionCount == 2)
        #expect(view.impression(0) == (12, 102))
        #expect(view.impression(1) == (10, 100))
        #expect(view.interactionCount == 2)
        let newest = view.interaction(0)
        #expect(newest.item == 13 && newest.type == .purchase && newest.time == 103 && newest.weight == 1)
        let older = view.interaction(1)
        #expect(older.item == 11 && older.type == .click && older.weight == 2.5)
        #expect(store.users == 1)
    }

    @Test func ringsKeepOnlyTheNewestEvents() {
        let store = store(perShard: 2)
        let user = EventKey.user("u1")
        for i in 0..<100 {
            store.record(userKey: user, itemKey: UInt64(i), type: .impression, time: UInt32(i))
            store.record(userKey: user, itemKey: UInt64(1000 + i), type: .click, time: UInt32(i))
        }
        var view = UserEventView()
        store.read(userKey: user, into: &view)
        #expect(view.impressionCount == EventSlotLayout.impressionCapacity)
        #expect(view.interactionCount == EventSlotLayout.interactionCapacity)
        for i in 0..<view.impressionCount { #expect(view.impression(i).item == UInt64(99 - i)) }
        for i in 0..<view.interactionCount { #expect(view.interaction(i).item == UInt64(1099 - i)) }
    }

    @Test func itemKeysKeepSixtyBitsAndTheirType() {
        let store = store(perShard: 1)
        let item = EventKey.item("sku-1")
        #expect(item <= EventKey.itemMask)
        store.record(userKey: 1, itemKey: item, type: .addToCart, time: 5)
        var view = UserEventView()
        store.read(userKey: 1, into: &view)
        #expect(view.interaction(0).item == item)
        #expect(view.interaction(0).type == .addToCart)
    }

    @Test func unknownUserReadsAsEmpty() {
        let store = store(perShard: 1)
        var view = UserEventView()
        store.record(userKey: 7, itemKey: 1, type: .click, time: 1)
        store.read(userKey: 7, into: &view)
        #expect(!store.read(userKey: 8, into: &view))
        #expect(view.impressionCount == 0 && view.interactionCount == 0)
    }

    @Test func neverHoldsMoreUsersThanTheBudgetAndCountsEvictions() {
        let store = store(perShard: 8, shards: 4)
        #expect(store.capacity == 32)
        for user in 0..<1000 {
            store.record(userKey: EventKey.user("u\(user)"), itemKey: 1, type: .click, time: 1)
        }
        #expect(store.users <= 32)
        #expect(store.users + store.evictions == 1000)
        // The newest user of all is still there: eviction takes old slots, never the one just written.
        var view = UserEventView()
        #expect(store.read(userKey: EventKey.user("u999"), into: &view))
    }

    @Test func clockSparesRecentlyReadUsers() {
        let store = store(perShard: 4)
        for user in 0..<4 { store.record(userKey: UInt64(user), itemKey: 1, type: .click, time: 1) }
        // One new user sweeps every bit clear (all were just written) and takes the first slot.
        store.record(userKey: 100, itemKey: 1, type: .click, time: 1)
        var view = UserEventView()
        #expect(!store.read(userKey: 0, into: &view))
        // User 1 is read (referenced again); the next arrival must take user 2's slot, not user 1's.
        #expect(store.read(userKey: 1, into: &view))
        store.record(userKey: 101, itemKey: 1, type: .click, time: 1)
        #expect(store.read(userKey: 1, into: &view))
        #expect(!store.read(userKey: 2, into: &view))
        #expect(store.evictions == 2)
    }

    @Test func purgeForgetsTheUserAndFreesTheirSlot() {
        let store = store(perShard: 2)
        store.record(userKey: EventKey.user("alice"), itemKey: 1, type: .purchase, time: 1)
        store.record(userKey: EventKey.user("bob"), itemKey: 2, type: .purchase, time: 1)
        store.purge(userID: "alice")
        var view = UserEventView()
        #expect(!store.read(userKey: EventKey.user("alice"), into: &view))
        #expect(store.users == 1)
        // The freed slot takes the next user without evicting bob.
        store.record(userKey: EventKey.user("carol"), itemKey: 3, type: .click, time: 1)
        #expect(store.evictions == 0)
        #expect(store.read(userKey: EventKey.user("bob"), into: &view))
        // A purged user who comes back starts from nothing.
        store.record(userKey: EventKey.user("alice"), itemKey: 9, type: .click, time: 2)
        store.read(userKey: EventKey.user("alice"), into: &view)
        #expect(view.interactionCount == 1 && view.interaction(0).item == 9)
    }

    @Test func concurrentWritersAndReadersKeepEveryUserConsistent() async {
        let store = store(perShard: 128, shards: 8)
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    for i in 0..<20_000 {
                        let user = UInt64(writer * 1000 + i % 100) &* 0x9E37_79B9_7F4A_7C15
                        store.record(
                            userKey: user, itemKey: UInt64(i), type: i % 3 == 0 ? .click : .impression,
                            time: UInt32(i))
                    }
                }
            }
            group.addTask {
                var view = UserEventView()
                for i in 0..<20_000 {
                    let user = UInt64(i % 100) &* 0x9E37_79B9_7F4A_7C15
                    if store.read(userKey: user, into: &view) {
                        // Within one user's view, a ring never shows more than it holds, and times only fall.
                        #expect(view.impressionCount <= EventSlotLayout.impressionCapacity)
                        for j in 1..<max(1, view.impressionCount) {
                            #expect(view.impression(j).time <= view.impression(j - 1).time)
                        }
                    }
                }
            }
        }
        // 400 distinct users, room for 1024: all tracked, none evicted.
        #expect(store.users == 400)
        #expect(store.evictions == 0)
    }
}

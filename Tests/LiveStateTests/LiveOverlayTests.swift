import Foundation
import RankingModel
import Snapshot
import Synchronization
import Testing

@testable import LiveState

@Suite struct LiveOverlayTests {
    let fixture = LiveStateFixture.shared
    var snapshot: Snapshot { fixture.snapshot }
    let after = LiveStateFixture.builtAt + 60_000

    func row(_ id: String) -> Int { snapshot.itemIds.row(for: id)! }

    func update(_ overlay: LiveOverlay, _ items: [ItemUpdate]) -> Result<UpdateItemsResult, LiveStateError> {
        wait { overlay.updateItems(UpdateItemsRequest(items: items), against: snapshot, completion: $0) }
    }

    @Test func updatesAreVisibleInTheBindingOnceAcknowledged() throws {
        let overlay = try LiveOverlay(directory: fixture.logDirectory(), clock: TestClock(after).function)
        defer { overlay.close() }
        let binding = overlay.bind(snapshot)
        let sale = snapshot.tags.row(for: "sale")!
        let result = try update(
            overlay,
            [
                ItemUpdate(itemID: "sku-1", inStock: false, price: 12.345, addTags: ["sale"]),
                ItemUpdate(itemID: "nope"),
                ItemUpdate(itemID: "sku-2", removed: true),
                ItemUpdate(itemID: "sku-1", inStock: true),
            ]
        ).get()
        #expect(result.applied == 3)
        #expect(result.unknownItemIDs == ["nope"])
        #expect(result.sequence == 1)
        binding.read { columns in
            #expect(columns.inStock[row("sku-1")] == 1, "a later change of the same item in a batch wins")
            #expect(columns.priceCents[row("sku-1")] == 1235)
            #expect(columns.tags[row("sku-1")] & (1 << UInt64(sale)) != 0)
            #expect(columns.isRemoved(row("sku-2")))
            #expect(!columns.isRemoved(row("sku-1")))
            #expect(columns.priceCents[row("sku-3")] == snapshot.attributes.priceCents[row("sku-3")])
        }
        #expect(overlay.status().items == 2)
        #expect(overlay.status().removedItems == 1)
    }

    @Test func unknownTagIsInvalidArgumentNamingItemAndFieldAndChangesNothing() throws {
        let overlay = try LiveOverlay(directory: fixture.logDirectory(), clock: TestClock(after).function)
        defer { overlay.close() }
        let result = update(
            overlay, [ItemUpdate(itemID: "sku-1", inStock: false), ItemUpdate(itemID: "sku-4", addTags: ["glitter"])])
        guard case .failure(let error) = result else {
            Issue.record("expected a failure")
            return
        }
        #expect(error.code == .invalidArgument)
        #expect(error.message.contains("items[1] (sku-4).add_tags"))
        #expect(error.message.contains("glitter"))
        #expect(overlay.status().items == 0)
        #expect(overlay.status().sequence == 0)
    }

    @Test func restartReplaysEveryAcknowledgedChange() throws {
        let directory = fixture.logDirectory()
        let clock = TestClock(after)
        do {
            let overlay = try LiveOverlay(directory: directory, clock: clock.function)
            _ = try update(overlay, [ItemUpdate(itemID: "sku-7", price: 3, removeTags: ["new"])]).get()
            _ = try wait { overlay.deleteUser("u_3", against: snapshot, completion: $0) }.get()
            _ = try update(overlay, [ItemUpdate(itemID: "sku-8", removed: true)]).get()
            overlay.close()
        }
        let reopened = try LiveOverlay(directory: directory, clock: clock.function)
        defer { reopened.close() }
        #expect(reopened.recovery.records == 3)
        let binding = reopened.bind(snapshot)
        binding.read { columns in
            #expect(columns.priceCents[row("sku-7")] == 300)
            #expect(columns.isRemoved(row("sku-8")))
            #expect(columns.isUserDeleted(snapshot.userIds.row(for: "u_3")!))
            #expect(!columns.isUserDeleted(snapshot.userIds.row(for: "u_4")!))
        }
        #expect(reopened.status().sequence == 3)
        #expect(reopened.status().deletedUsers == 1)
    }

    @Test func changesOlderThanTheSnapshotAreNotAppliedAndCompactionDropsThem() throws {
        let directory = fixture.logDirectory()
        let clock = TestClock(LiveStateFixture.builtAt - 5_000)
        let overlay = try LiveOverlay(directory: directory, clock: clock.function)
        defer { overlay.close() }
        _ = try update(overlay, [ItemUpdate(itemID: "sku-10", removed: true)]).get()
        _ = try wait { overlay.deleteUser("u_1", against: snapshot, completion: $0) }.get()
        clock.set(after)
        _ = try update(overlay, [ItemUpdate(itemID: "sku-11", removed: true)]).get()
        _ = try wait { overlay.deleteUser("u_2", against: snapshot, completion: $0) }.get()
        let binding = overlay.bind(snapshot)
        binding.read { columns in
            #expect(!columns.isRemoved(row("sku-10")), "removed before the snapshot's data was taken: in it already")
            #expect(columns.isRemoved(row("sku-11")))
            #expect(!columns.isUserDeleted(snapshot.userIds.row(for: "u_1")!))
            #expect(columns.isUserDeleted(snapshot.userIds.row(for: "u_2")!))
        }
        let before = overlay.status().logBytes
        let bytes = try wait { overlay.compact(horizon: LiveStateFixture.builtAt, completion: $0) }.get()
        #expect(bytes < before)
        #expect(overlay.status().items == 1)
        #expect(overlay.status().deletedUsers == 1)
        // The compacted log's two records (items, users) take the next numbers: numbers never repeat.
        #expect(overlay.status().sequence == 6)
        overlay.close()
        let reopened = try LiveOverlay(directory: directory, clock: clock.function)
        defer { reopened.close() }
        #expect(reopened.status().items == 1)
        #expect(reopened.status().deletedUsers == 1)
        _ = try update(reopened, [ItemUpdate(itemID: "sku-12", inStock: true)]).get()
        #expect(reopened.status().sequence == 7)
    }

    @Test func deletionPurgesServerSideStateBeforeTheAcknowledgementAndAtRegistration() throws {
        final class Recorder: UserStatePurging {
            let purged = Mutex<[String]>([])
            func purgeUser(_ userID: String) { purged.withLock { $0.append(userID) } }
        }
        let directory = fixture.logDirectory()
        let overlay = try LiveOverlay(directory: directory, clock: TestClock(after).function)
        let recorder = Recorder()
        overlay.addPurger(recorder)
        let result = try wait { overlay.deleteUser("someone-unknown", against: snapshot, completion: $0) }.get()
        #expect(!result.knownUser)
        #expect(recorder.purged.withLock { $0 } == ["someone-unknown"])
        overlay.close()
        let reopened = try LiveOverlay(directory: directory, clock: TestClock(after).function)
        defer { reopened.close() }
        let late = Recorder()
        reopened.addPurger(late)
        #expect(late.purged.withLock { $0 } == ["someone-unknown"], "deletions in the log are purged again at start")
    }

    @Test func concurrentBatchesShareGroupsAndReadersSeeWholeGroups() throws {
        let overlay = try LiveOverlay(directory: fixture.logDirectory(), clock: TestClock(after).function)
        defer { overlay.close() }
        let binding = overlay.bind(snapshot)
        let (a, b) = (row("sku-20"), row("sku-21"))
        _ = try update(overlay, [ItemUpdate(itemID: "sku-20", price: 1), ItemUpdate(itemID: "sku-21", price: 1)]).get()
        let stop = Atomic<Bool>(false)
        let torn = Atomic<Int>(0)
        let reads = Atomic<Int>(0)
        let readers = DispatchGroup()
        for _ in 0..<2 {
            readers.enter()
            Thread.detachNewThread {
                while !stop.load(ordering: .relaxed) {
                    binding.read { columns in
                        // Every batch sets both prices to the same value: a reader never sees half of one.
                        if columns.priceCents[a] != columns.priceCents[b] { torn.add(1, ordering: .relaxed) }
                    }
                    reads.add(1, ordering: .relaxed)
                }
                readers.leave()
            }
        }
        let batches = 200
        let senders = DispatchGroup()
        for batch in 0..<batches {
            senders.enter()
            overlay.updateItems(
                UpdateItemsRequest(items: [
                    ItemUpdate(itemID: "sku-20", price: Double(batch)),
                    ItemUpdate(itemID: "sku-21", price: Double(batch)),
                ]), against: snapshot
            ) { result in
                if case .failure(let error) = result { Issue.record("\(error)") }
                senders.leave()
            }
        }
        senders.wait()
        stop.store(true, ordering: .relaxed)
        readers.wait()
        #expect(torn.load(ordering: .relaxed) == 0)
        #expect(reads.load(ordering: .relaxed) > 0)
        #expect(overlay.status().sequence == UInt64(batches + 1), "one record per batch")
    }
}

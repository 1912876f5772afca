import Foundation
import LiveState
import RankingModel
import Snapshot
import SnapshotLifecycle
import Synchronization
import Testing

@testable import RankingEngine

/// Live updates as Rank sees them: removed items on every path, stock/price/tag patches in filters and rules,
/// deleted users ranked as unknown.
@Suite struct LiveOverlayRankTests {
    let fixture = ValueIndexFixture.shared

    /// A fresh serving copy of the fixture's `name` snapshot with a live overlay attached, as activation does.
    final class Served: Sendable {
        let serving: ServingSnapshot
        let live: LiveOverlay
        let engine: RankingEngine

        init(_ directory: String) throws {
            serving = try ServingSnapshot.load(directory: directory)
            live = try LiveOverlay(directory: NSTemporaryDirectory() + "live-rank-" + UUID().uuidString)
            serving.attach(live)
            engine = RankingEngine(registry: SnapshotRegistry(serving))
        }

        deinit { live.close() }

        func update(_ items: [ItemUpdate]) throws -> UpdateItemsResult {
            try sync { live.updateItems(UpdateItemsRequest(items: items), against: serving.snapshot, completion: $0) }
        }

        func delete(_ user: String) throws {
            _ = try sync { live.deleteUser(user, against: serving.snapshot, completion: $0) }
        }

        private func sync<T: Sendable>(
            _ call: (@escaping @Sendable (Result<T, LiveStateError>) -> Void) -> Void
        ) throws -> T {
            let done = DispatchSemaphore(value: 0)
            let box = Mutex<Result<T, LiveStateError>?>(nil)
            call { result in
                box.withLock { $0 = result }
                done.signal()
            }
            done.wait()
            return try box.withLock { $0! }.get()
        }

        func ids(_ configure: (inout RankRequest) -> Void) throws -> [String] {
            try engine.rank(request(configure), now: 0).items.map(\.itemID)
        }
    }

    /// The largest category's name.
    func largestCategory(_ snapshot: Snapshot) -> String {
        let counts = (0..<snapshot.categories.count).map { snapshot.popularity.itemCount(inCategory: $0) }
        return snapshot.categories.id(at: counts.indices.max { counts[$0] < counts[$1] }!)!
    }

    @Test(arguments: ["indexed", "exact"])
    func removedItemsAreNeverServedOnAnyPath(_ name: String) throws {
        let served = try Served(fixture.directory + "/" + name)
        let category = largestCategory(served.serving.snapshot)
        let calls: [(String, (inout RankRequest) -> Void)] = [
            ("personalised", { $0.userID = "u_1" }),
            (
                "category page",
                {
                    $0.userID = "u_1"; $0.filter.includeCategories = [category]
                }
            ),
            (
                "category page, in stock",
                {
                    $0.userID = "u_2"; $0.filter.includeCategories = [category]; $0.filter.inStockOnly = true
                }
            ),
            ("cold start", { $0.userID = "stranger" }),
            (
                "cold start category",
                {
                    $0.userID = "stranger"; $0.filter.includeCategories = [category]
                }
            ),
            (
                "session",
                {
                    $0.userID = "stranger"; $0.recentItemIDs = ["sku-5"]
                }
            ),
        ]
        var removed = Set<String>()
        for (_, configure) in calls { removed.formUnion(try served.ids(configure)) }
        removed.remove("sku-6")
        let result = try served.update(removed.map { ItemUpdate(itemID: $0, removed: true) })
        #expect(result.applied == removed.count)
        let snapshot = served.serving.snapshot
        for (label, configure) in calls {
            let ids = try served.ids(configure)
            #expect(!ids.isEmpty, "\(label): still serves")
            #expect(Set(ids).isDisjoint(with: removed), "\(label) served a removed item")
            if label.contains("category") {
                let categories = Set(ids.map { snapshot.attributes.category[snapshot.itemIds.row(for: $0)!] })
                #expect(categories == [UInt32(snapshot.categories.row(for: category)!)], "\(label) left its category")
            }
        }
        // Pins and session signals: a removed item is dropped / unknown.
        let gone = removed.sorted().first!
        let pinned = try served.engine.rank(
            request {
                $0.userID = "u_1"; $0.pins = [.init(itemID: gone, position: 0)]
            })
        #expect(pinned.droppedPins.map(\.reason) == ["item removed"])
        #expect(!pinned.items.map(\.itemID).contains(gone))
        let session = try served.engine.rank(
            request {
                $0.userID = "stranger"; $0.recentItemIDs = [gone]
            })
        #expect(session.strategy == .popular)
        #expect(session.unknownItemIDs == [gone])
        #expect(served.live.status().removedItems == removed.count)
    }

    @Test func stockPriceAndTagPatchesAreHonouredLikeSnapshotAttributes() throws {
        let served = try Served(fixture.directory + "/indexed")
        let snapshot = served.serving.snapshot
        // Stock: the top in-stock items go out of stock and leave the in-stock list; an out-of-stock item
        // comes back in.
        let inStock = try served.ids {
            $0.userID = "u_3"; $0.filter.inStockOnly = true
        }
        _ = try served.update(inStock.prefix(3).map { ItemUpdate(itemID: $0, inStock: false) })
        let after = try served.ids {
            $0.userID = "u_3"; $0.filter.inStockOnly = true
        }
        #expect(Set(after).isDisjoint(with: inStock.prefix(3)))
        let outOfStock = (0..<snapshot.itemIds.count).first { snapshot.attributes.inStock[$0] == 0 }!
        let restocked = snapshot.itemIds.id(at: outOfStock)!
        // Price: a unique price finds exactly that item, through the price filter.
        _ = try served.update([ItemUpdate(itemID: restocked, inStock: true, price: 98_765.43)])
        let priced = try served.ids {
            $0.userID = "stranger"; $0.filter.minPrice = 98_765.43; $0.filter.maxPrice = 98_765.43;
            $0.filter.inStockOnly = true
        }
        #expect(priced == [restocked])
        // Tags: added and removed live, in tags_any filters (the filter estimate counts the added tag).
        let tag = "refurbished"
        let tagged = (0..<snapshot.itemIds.count).filter {
            snapshot.attributes.tags[$0] & (1 << UInt64(snapshot.tags.row(for: tag)!)) != 0
        }.map { snapshot.itemIds.id(at: $0)! }
        _ = try served.update(tagged.map { ItemUpdate(itemID: $0, removeTags: [tag]) })
        #expect(
            try served.ids {
                $0.userID = "u_4"; $0.filter.tagsAny = [tag]
            }.isEmpty)
        _ = try served.update([ItemUpdate(itemID: restocked, addTags: [tag])])
        #expect(
            try served.ids {
                $0.userID = "u_4"; $0.filter.tagsAny = [tag]
            } == [restocked])
        // Re-ranking reads the patched stock too: an out-of-stock pin is dropped as one.
        let pin = try served.engine.rank(
            request {
                $0.userID = "u_3"; $0.filter.inStockOnly = true; $0.pins = [.init(itemID: inStock[0], position: 0)]
            })
        #expect(pin.droppedPins.map(\.reason) == ["out of stock"])
    }

    @Test func aDeletedUserIsRankedExactlyAsAnUnknownUser() throws {
        let served = try Served(fixture.directory + "/indexed")
        let before = try served.engine.rank(request { $0.userID = "u_7" }, now: 0)
        #expect(before.strategy == .personalized)
        try served.delete("u_7")
        let after = try served.engine.rank(request { $0.userID = "u_7" }, now: 0)
        let stranger = try served.engine.rank(request { $0.userID = "never-seen" }, now: 0)
        #expect(after.strategy == .popular)
        #expect(after.items == stranger.items)
        let blended = try served.engine.rank(
            request {
                $0.userID = "u_7"; $0.recentItemIDs = ["sku-9"]
            }, now: 0)
        #expect(blended.strategy == .session)
    }
}

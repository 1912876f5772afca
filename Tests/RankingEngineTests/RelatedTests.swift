import RankingModel
import Testing

@testable import RankingEngine

/// Related runs Rank's pipeline with the seeds as the query: live removals, filters and consent
/// apply exactly as for Rank; seeds are never returned and explanations name the nearest seed.
@Suite struct RelatedTests {
    let fixture = ValueIndexFixture.shared

    @Test(arguments: ["indexed", "exact"])
    func liveRemovalsApplyAndSeedsAreNeverReturned(_ name: String) throws {
        let served = try LiveOverlayRankTests.Served(fixture.directory + "/" + name)
        let seeds = ["sku-3", "sku-11"]
        let related = { (configure: (inout RankRequest) -> Void) throws(RankError) -> RankResponse in
            var r = request(configure)
            r.seedItemIDs = seeds
            return try served.engine.related(r, now: 0)
        }
        let before = try related {
            $0.k = 10; $0.explain = true
        }
        #expect(before.strategy == .related)
        #expect(before.items.count == 10)
        #expect(Set(before.items.map(\.itemID)).isDisjoint(with: seeds))
        for item in before.items {
            #expect(seeds.contains(item.explanation?.similarToItemID ?? ""))
        }
        // Remove the three best answers live: the next call never serves them.
        let gone = before.items.prefix(3).map(\.itemID)
        _ = try served.update(gone.map { ItemUpdate(itemID: $0, removed: true) })
        let after = try related { $0.k = 10 }
        #expect(Set(after.items.map(\.itemID)).isDisjoint(with: gone + seeds))
        #expect(after.items.count == 10)
        // A seed removed live is an unknown seed, named.
        _ = try served.update([ItemUpdate(itemID: seeds[1], removed: true)])
        #expect(throws: RankError.invalidArgument("seed_item_ids[1]: unknown item 'sku-11'")) {
            _ = try related { $0.k = 10 }
        }
    }

    @Test func consentNoneIgnoresTheUserAndFullBlendsIt() throws {
        let served = try LiveOverlayRankTests.Served(fixture.directory + "/indexed")
        func ids(_ user: String, _ consent: RankRequest.Consent) throws -> [String] {
            var r = request {
                $0.k = 20; $0.userID = user; $0.consent = consent
            }
            r.seedItemIDs = ["sku-5"]
            return try served.engine.related(r, now: 0).items.map(\.itemID)
        }
        let anonymous = try ids("", .full)
        #expect(try ids("u_1", .none) == anonymous)
        #expect(try ids("u_1", .full) != anonymous)
    }

    @Test func noSeedIsAnInvalidArgument() {
        let engine = RankingEngine(registry: .init(nil))
        #expect(throws: RankError.invalidArgument("seed_item_ids: at least one seed item is required")) {
            _ = try engine.related(RankRequest())
        }
    }
}

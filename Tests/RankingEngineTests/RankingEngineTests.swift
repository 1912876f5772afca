import Foundation
import RankingModel
import Snapshot
import SnapshotLifecycle
import Testing

@testable import RankingEngine

/// One small seeded snapshot (built once per test process) with an experiment that has a holdout.
final class EngineFixture: Sendable {
    let directory: String
    let serving: ServingSnapshot
    let engine: RankingEngine

    static let shared: EngineFixture = {
        do {
            return try EngineFixture()
        } catch {
            fatalError("engine fixture: \(error)")
        }
    }()

    private init() throws {
        directory = NSTemporaryDirectory() + "engine-tests-" + UUID().uuidString
        var data = SyntheticDataOptions()
        data.users = 200
        data.items = 800
        data.dimension = 16
        data.categories = 8
        data.seed = 11
        let files = try SyntheticData.write(data, to: directory + "/in")
        var options = SnapshotBuildOptions(
            users: files.users, userIds: files.userIds, items: files.items, itemsMeta: files.itemsMeta,
            output: directory + "/snap")
        options.snapshotVersion = "v-test"
        options.threads = 1
        options.hnsw.efConstruction = 60
        options.rankingConfig = .object([
            "k": .number(10), "poolSize": .number(100), "method": .string("mmr"), "tradeoff": .number(0.7),
            "experiments": .array([
                .object([
                    "name": .string("exp"), "salt": .string("s1"),
                    "arms": .array([
                        .object(["name": .string("control"), "weight": .number(50)]),
                        .object(["name": .string("dpp"), "weight": .number(30), "method": .string("dpp")]),
                        .object(["name": .string("holdout"), "weight": .number(20), "holdout": .bool(true)]),
                    ]),
                ])
            ]),
        ])
        try SnapshotBuilder.build(options)
        serving = try ServingSnapshot.load(directory: directory + "/snap")
        engine = RankingEngine(registry: SnapshotRegistry(serving))
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    var snapshot: Snapshot { serving.snapshot }

    func category(of itemID: String) -> String {
        let row = snapshot.itemIds.row(for: itemID)!
        return snapshot.categories.id(at: Int(snapshot.attributes.category[row]))!
    }

    func row(_ itemID: String) -> Int { snapshot.itemIds.row(for: itemID)! }

    /// A user id that the experiment puts in `arm`.
    func user(inArm arm: String) throws -> String {
        for index in 0..<200 {
            let user = "u_\(index)"
            if try serving.config.parameters(userID: user, forcedArm: nil).arm == arm { return user }
        }
        fatalError("no user in arm \(arm)")
    }
}

func request(_ configure: (inout RankRequest) -> Void) -> RankRequest {
    var request = RankRequest()
    configure(&request)
    return request
}

@Suite struct RankingEngineTests {
    let fixture = EngineFixture.shared
    var engine: RankingEngine { fixture.engine }

    @Test func knownUserIsPersonalisedWithKDistinctItems() throws {
        let user = try fixture.user(inArm: "control")
        let response = try engine.rank(
            request {
                $0.userID = user; $0.k = 12
            })
        #expect(response.strategy == .personalized)
        #expect(response.items.count == 12)
        #expect(Set(response.items.map(\.itemID)).count == 12)
        #expect(response.items.map(\.position) == Array(0..<12))
        #expect(response.snapshotVersion == "v-test")
        #expect(response.experiment == "exp" && response.experimentArm == "control")
    }

    /// Found by the rank-request fuzz target: a finite price bound past Int64.max cents trapped
    /// converting to cents (one request could stop the server).
    @Test func hugePriceBoundsMeanNoLimitInsteadOfTrapping() throws {
        let response = try engine.rank(
            request {
                $0.userID = "nobody"; $0.k = 5
                $0.filter.minPrice = 0; $0.filter.maxPrice = 1e300
            })
        #expect(response.items.count == 5)
        let none = try engine.rank(
            request {
                $0.userID = "nobody"; $0.k = 5
                $0.filter.minPrice = 1e300; $0.filter.maxPrice = .greatestFiniteMagnitude
            })
        #expect(none.items.isEmpty)
    }

    @Test func defaultKComesFromTheSnapshotConfig() throws {
        #expect(try engine.rank(request { $0.userID = "u_1" }).items.count == 10)
    }

    @Test func unknownUserWithoutSessionIsColdStartPopularity() throws {
        let response = try engine.rank(
            request {
                $0.userID = "stranger"; $0.diversity.method = .none
            })
        #expect(response.strategy == .popular)
        // With no diversification the list is the global popularity order.
        let expected = fixture.snapshot.popularity.global.buffer.prefix(10).map {
            fixture.snapshot.itemIds.id(at: Int($0))!
        }
        #expect(response.items.map(\.itemID) == expected)
    }

    @Test func unknownUserWithSessionUsesTheSessionAndReportsUnknownIds() throws {
        let response = try engine.rank(
            request {
                $0.userID = "stranger"; $0.recentItemIDs = ["sku-3", "nope", "sku-9"]
            })
        #expect(response.strategy == .session)
        #expect(response.unknownItemIDs == ["nope"])
        #expect(response.items.count == 10)
    }

    @Test func knownUserWithSessionIsBlended() throws {
        let user = try fixture.user(inArm: "control")
        #expect(
            try engine.rank(
                request {
                    $0.userID = user; $0.recentItemIDs = ["sku-3"]
                }
            ).strategy == .blended)
    }

    @Test func consentNoneNeverUsesTheUserOrTheirHistory() throws {
        let a = try engine.rank(
            request {
                $0.userID = "u_1"; $0.consent = .none; $0.recentItemIDs = ["sku-3"]
            })
        let b = try engine.rank(
            request {
                $0.userID = "u_2"; $0.consent = .none
            })
        let anonymous = try engine.rank(
            request {
                $0.userID = ""; $0.consent = .none
            })
        #expect(a.strategy == .nonPersonalized)
        #expect(a.items == b.items && b.items == anonymous.items)
        #expect(a.experimentArm.isEmpty && a.unknownItemIDs.isEmpty)
        // The personalised answer for the same user differs: the user vector really was ignored.
        let personal = try engine.rank(request { $0.userID = try! fixture.user(inArm: "control") })
        #expect(personal.items.map(\.itemID) != a.items.map(\.itemID))
    }

    @Test func holdoutArmIsServedByPopularity() throws {
        let response = try engine.rank(request { $0.userID = try! fixture.user(inArm: "holdout") })
        #expect(response.strategy == .popular && response.experimentArm == "holdout")
    }

    @Test func forcedArmOverridesAssignment() throws {
        let user = try fixture.user(inArm: "control")
        let response = try engine.rank(
            request {
                $0.userID = user; $0.experimentArm = "dpp"; $0.explain = true
            })
        #expect(response.experimentArm == "dpp")
        #expect(response.items.dropFirst().contains { $0.explanation?.rule == "dpp" })
    }

    @Test func filtersAreHonouredOnEveryPath() throws {
        let snapshot = fixture.snapshot
        let category = snapshot.categories.id(at: 2)!
        for user in ["u_5", "stranger", ""] {
            for consent: RankRequest.Consent in [.full, .none] {
                let response = try engine.rank(
                    request {
                        $0.userID = user
                        $0.consent = consent
                        $0.k = 15
                        $0.filter.includeCategories = [category]
                        $0.filter.inStockOnly = true
                        $0.filter.maxPrice = 60
                    })
                #expect(!response.items.isEmpty)
                for item in response.items {
                    let row = fixture.row(item.itemID)
                    #expect(item.category == category)
                    #expect(snapshot.attributes.inStock[row] == 1)
                    #expect(snapshot.attributes.priceCents[row] <= 6000)
                }
            }
        }
    }

    @Test func excludedItemsBrandsAndCategoriesNeverAppear() throws {
        let first = try engine.rank(
            request {
                $0.userID = "u_7"; $0.k = 20
            })
        let excludedItems = Array(first.items.prefix(5).map(\.itemID))
        let excludedCategory = first.items[6].category
        let response = try engine.rank(
            request {
                $0.userID = "u_7"
                $0.k = 20
                $0.filter.excludeItemIDs = excludedItems
                $0.filter.excludeCategories = [excludedCategory]
            })
        #expect(response.items.count == 20)
        #expect(response.items.allSatisfy { !excludedItems.contains($0.itemID) && $0.category != excludedCategory })
    }

    @Test func unknownIncludedCategoryMatchesNothing() throws {
        let response = try engine.rank(
            request {
                $0.userID = "u_1"; $0.filter.includeCategories = ["No Such"]
            })
        #expect(response.items.isEmpty && response.fewerThanK)
    }

    @Test func capsAndSpreadHoldEndToEnd() throws {
        let response = try engine.rank(
            request {
                $0.userID = "u_9"
                $0.k = 24
                $0.diversity.maxPerCategory = 3
                $0.diversity.spreadWindow = 4
                $0.diversity.spreadMaxPerCategory = 1
            })
        var counts: [String: Int] = [:]
        for item in response.items { counts[item.category, default: 0] += 1 }
        #expect(counts.values.allSatisfy { $0 <= 3 })
        for start in 0..<max(0, response.items.count - 3) {
            let window = response.items[start..<start + 4].map(\.category)
            #expect(Set(window).count == window.count)
        }
        // 8 categories × 3 = 24 fits exactly, unless the spread rule runs out first.
        #expect(response.items.count <= 24)
    }

    @Test func pinsLandExactlyAndBadPinsAreDroppedWithReasons() throws {
        let snapshot = fixture.snapshot
        let outOfStock = (0..<snapshot.itemIds.count).first { snapshot.attributes.inStock[$0] == 0 }!
        let outOfStockID = snapshot.itemIds.id(at: outOfStock)!
        let response = try engine.rank(
            request {
                $0.userID = "u_4"
                $0.k = 8
                $0.filter.inStockOnly = true
                $0.pins = [
                    .init(itemID: "sku-5", position: 0), .init(itemID: "sku-77", position: 5),
                    .init(itemID: outOfStockID, position: 3), .init(itemID: "ghost", position: 4),
                ]
            })
        let sku5InStock = snapshot.attributes.inStock[fixture.row("sku-5")] == 1
        let sku77InStock = snapshot.attributes.inStock[fixture.row("sku-77")] == 1
        if sku5InStock { #expect(response.items[0].itemID == "sku-5") }
        if sku77InStock { #expect(response.items[5].itemID == "sku-77") }
        #expect(response.droppedPins.contains { $0.itemID == outOfStockID && $0.reason == "out of stock" })
        #expect(response.droppedPins.contains { $0.itemID == "ghost" && $0.reason == "unknown item" })
        #expect(response.unknownItemIDs == ["ghost"])
        #expect(!response.items.contains { $0.itemID == outOfStockID })
    }

    @Test func boostsChangeTheOrder() throws {
        let base = try engine.rank(
            request {
                $0.userID = "u_3"; $0.k = 10; $0.diversity.method = .none
            })
        let last = base.items.last!
        let boosted = try engine.rank(
            request {
                $0.userID = "u_3"
                $0.k = 10
                $0.diversity.method = .none
                $0.boosts = [.init(target: .itemID(last.itemID), add: 1000)]
                $0.explain = true
            })
        #expect(boosted.items[0].itemID == last.itemID)
        #expect(boosted.items[0].explanation?.appliedBoosts.first?.contains(last.itemID) == true)
    }

    @Test func explanationsCarryRelevanceRuleAndReason() throws {
        let response = try engine.rank(
            request {
                $0.userID = "u_8"; $0.explain = true
            })
        for item in response.items {
            let explanation = try #require(item.explanation)
            #expect(!explanation.rule.isEmpty && !explanation.reason.isEmpty)
        }
        let plain = try engine.rank(request { $0.userID = "u_8" })
        #expect(plain.items.allSatisfy { $0.explanation == nil })
    }

    @Test func expiredDeadlineIsDeadlineExceededAndTightOneDegrades() throws {
        #expect(throws: RankError.deadlineExceeded("deadline expired before ranking started")) {
            try engine.rank(request { $0.userID = "u_1" }, remainingNanoseconds: 0)
        }
        let tight = try engine.rank(
            request {
                $0.userID = "u_1"; $0.diversity.method = .dpp
            }, remainingNanoseconds: 1_000_000)
        #expect(tight.degraded && tight.degradedReason.contains("deadline"))
        #expect(tight.items.count == 10)
        let relaxed = try engine.rank(request { $0.userID = "u_1" }, remainingNanoseconds: 1_000_000_000)
        #expect(!relaxed.degraded)
    }

    @Test func invalidFieldsNameTheField() {
        #expect(throws: RankError.invalidArgument("k: must be 1...1000 (0 = default), got 1001")) {
            try engine.rank(request { $0.k = 1001 })
        }
        do {
            _ = try engine.rank(request { $0.experimentArm = "nope" })
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("experiment_arm"))
        }
    }

    @Test func noActiveSnapshotIsUnavailable() {
        let empty = RankingEngine(registry: SnapshotRegistry())
        #expect(throws: RankError.unavailable("no snapshot is active yet")) { try empty.rank(RankRequest()) }
    }

    @Test func sameRequestSameAnswer() throws {
        let a = try engine.rank(
            request {
                $0.userID = "u_12"; $0.recentItemIDs = ["sku-1"]; $0.explain = true
            })
        let b = try engine.rank(
            request {
                $0.userID = "u_12"; $0.recentItemIDs = ["sku-1"]; $0.explain = true
            })
        #expect(a == b)
    }

    @Test func concurrentCallsAreIndependent() async throws {
        let engine = self.engine
        let expected = try (0..<16).map { index in try engine.rank(request { $0.userID = "u_\(index)" }) }
        try await withThrowingTaskGroup(of: (Int, RankResponse).self) { group in
            for round in 0..<64 {
                let index = round % 16
                group.addTask { (index, try engine.rank(request { $0.userID = "u_\(index)" })) }
            }
            for try await (index, response) in group {
                #expect(response == expected[index])
            }
        }
    }
}

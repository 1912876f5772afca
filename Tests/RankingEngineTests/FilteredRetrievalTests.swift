import Foundation
import RankingModel
import Snapshot
import SnapshotLifecycle
import Testing

@testable import RankingEngine

/// The same seeded catalogue served twice: with value indexes (quantised blocks) for its large categories and
/// brands and with partitions, and with neither nor a graph (where every call scans the passing items exactly: the
/// oracle). Rankings must agree.
final class ValueIndexFixture: Sendable {
    let directory: String
    let indexed: ServingSnapshot
    let exact: ServingSnapshot

    static let shared: ValueIndexFixture = {
        do {
            return try ValueIndexFixture()
        } catch {
            fatalError("value index fixture: \(error)")
        }
    }()

    private init() throws {
        directory = NSTemporaryDirectory() + "value-index-tests-" + UUID().uuidString
        var data = SyntheticDataOptions()
        data.users = 100
        data.items = 2400
        data.dimension = 16
        data.categories = 6
        data.brandsPerCategory = 3
        data.seed = 5
        let files = try SyntheticData.write(data, to: directory + "/in")
        indexed = try Self.build(files, directory + "/indexed", minItems: 300)
        exact = try Self.build(files, directory + "/exact", minItems: 0)
    }

    private static func build(
        _ files: SyntheticDataFiles, _ output: String, minItems: Int
    ) throws -> ServingSnapshot {
        var options = SnapshotBuildOptions(
            users: files.users, userIds: files.userIds, items: files.items, itemsMeta: files.itemsMeta,
            output: output)
        options.threads = 2
        options.hnsw.efConstruction = 60
        options.subgraphMinItems = minItems
        options.quantisedMinItems = minItems
        options.buildIndex = minItems > 0
        options.partitions = minItems > 0 ? 24 : 0
        options.partitionMinItems = minItems
        options.rankingConfig = .object([
            "k": .number(10), "poolSize": .number(10), "method": .string("none"), "efSearch": .number(32),
        ])
        try SnapshotBuilder.build(options)
        return try ServingSnapshot.load(directory: output)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }
}

@Suite struct FilteredRetrievalTests {
    let fixture = ValueIndexFixture.shared

    func rows(_ response: RankResponse, _ serving: ServingSnapshot) -> [Int] {
        response.items.map { serving.snapshot.itemIds.row(for: $0.itemID)! }
    }

    /// Mean overlap of the indexed engine's top 10 with the exact one's, over 40 users; every item passes.
    func agreement(_ configure: (inout RankRequest.Filter) -> Void, passes: (Int) -> Bool) throws -> Double {
        let fast = RankingEngine(registry: SnapshotRegistry(fixture.indexed))
        let slow = RankingEngine(registry: SnapshotRegistry(fixture.exact))
        var total = 0.0
        for user in 0..<40 {
            let call = request {
                $0.userID = "u_\(user)"
                configure(&$0.filter)
            }
            let got = rows(try fast.rank(call, now: 0), fixture.indexed)
            let want = rows(try slow.rank(call, now: 0), fixture.exact)
            #expect(got.count == want.count)
            let allPass = got.allSatisfy(passes)
            #expect(allPass, "an item outside the filter was ranked")
            total += Double(Set(got).intersection(want).count) / Double(max(want.count, 1))
        }
        return total / 40
    }

    @Test func theLargeCategoriesAndBrandsHaveValueIndexes() throws {
        let serving = fixture.indexed
        #expect(serving.valueIndexes.count >= 3)
        #expect(serving.valueIndexes.index(.category, serving.snapshot.categories.row(for: "category-0")!) != nil)
        #expect(fixture.exact.valueIndexes.count == 0)
    }

    @Test func unfilteredAndBroadFiltersSearchThePartitionsAndAgreeWithTheExactPlan() throws {
        #expect(fixture.indexed.partitions?.partitionCount == 24)
        #expect(fixture.exact.partitions == nil)
        let snapshot = fixture.exact.snapshot
        #expect(try agreement({ _ in }) { _ in true } >= 0.99)
        let overlap = try agreement({ $0.inStockOnly = true }) { snapshot.attributes.inStock[$0] == 1 }
        #expect(overlap >= 0.99, "overlap \(overlap)")
    }

    @Test func oneCategoryWithAValueIndexAgreesWithTheExactScan() throws {
        let snapshot = fixture.exact.snapshot
        let category = UInt32(snapshot.categories.row(for: "category-0")!)
        let overlap = try agreement({ $0.includeCategories = ["category-0"] }) {
            snapshot.attributes.category[$0] == category
        }
        #expect(overlap >= 0.99, "overlap \(overlap)")
    }

    @Test func severalCategoriesMergeTheirResults() throws {
        let snapshot = fixture.exact.snapshot
        let wanted = Set(["category-0", "category-1", "category-5"].map { UInt32(snapshot.categories.row(for: $0)!) })
        let overlap = try agreement({ $0.includeCategories = ["category-0", "category-1", "category-5"] }) {
            wanted.contains(snapshot.attributes.category[$0])
        }
        #expect(overlap >= 0.99, "overlap \(overlap)")
    }

    @Test func aBrandWithFurtherConditionsAgreesWithTheExactScan() throws {
        let snapshot = fixture.exact.snapshot
        let brand = UInt32(snapshot.brands.row(for: "brand-0-0")!)
        let overlap = try agreement({
            $0.includeBrands = ["brand-0-0"]
            $0.inStockOnly = true
        }) { snapshot.attributes.brand[$0] == brand && snapshot.attributes.inStock[$0] == 1 }
        #expect(overlap >= 0.99, "overlap \(overlap)")
    }

    @Test func excludedBrandInsideIncludedCategoriesIsNeverRanked() throws {
        let snapshot = fixture.exact.snapshot
        let wanted = Set(["category-0", "category-1"].map { UInt32(snapshot.categories.row(for: $0)!) })
        let excluded = UInt32(snapshot.brands.row(for: "brand-0-0")!)
        let overlap = try agreement({
            $0.includeCategories = ["category-0", "category-1"]
            $0.excludeBrands = ["brand-0-0"]
        }) { wanted.contains(snapshot.attributes.category[$0]) && snapshot.attributes.brand[$0] != excluded }
        #expect(overlap >= 0.99, "overlap \(overlap)")
    }

    @Test func aColdStartBrandPageIsTheBrandsMostPopularItems() throws {
        // Cold start on a brand page: the brand's items in popularity order (ties by row).
        let serving = fixture.indexed
        let snapshot = serving.snapshot
        let brand = UInt32(snapshot.brands.row(for: "brand-2-2")!)
        let response = try RankingEngine(registry: SnapshotRegistry(serving)).rank(
            request {
                $0.userID = "stranger"
                $0.filter.includeBrands = ["brand-2-2"]
                $0.diversity.method = .none
            }, now: 0)
        #expect(response.strategy == .popular)
        let expected = (0..<snapshot.attributes.count)
            .filter { snapshot.attributes.brand[$0] == brand }
            .sorted {
                let (a, b) = (snapshot.attributes.popularity[$0], snapshot.attributes.popularity[$1])
                return a != b ? a > b : $0 < $1
            }
            .prefix(response.items.count)
            .map { snapshot.itemIds.id(at: $0)! }
        #expect(!expected.isEmpty)
        #expect(response.items.map(\.itemID) == expected)
    }
}

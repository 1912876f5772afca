import Foundation
import MappedStorage
import Snapshot
import Testing
import VectorIndex

@Suite struct SnapshotRoundTripTests {
    @Test func everyIdResolvesToItsExactVectorAndAttributes() throws {
        let fixture = try SnapshotFixture()
        try fixture.build()
        let snapshot = try Snapshot.open(directory: fixture.output)
        #expect(snapshot.dimension == 8)
        #expect(snapshot.userIds.count == fixture.userVectors.count)
        for (row, id) in fixture.userIdList.enumerated() {
            #expect(snapshot.userIds.row(for: id) == row)
            #expect(snapshot.userIds.id(at: row) == id)
            #expect(snapshot.userVectors.vector(at: row) == fixture.userVectors[row])
        }
        let a = snapshot.attributes
        for row in 0..<fixture.itemVectors.count {
            #expect(snapshot.itemIds.row(for: "sku-\(row)") == row)
            #expect(snapshot.itemVectors.vector(at: row) == fixture.itemVectors[row])
            #expect(snapshot.categories.id(at: Int(a.category[row])) == ["shoes", "hats", "bags"][row % 3])
            if row % 5 == 4 {
                #expect(a.brand[row] == ItemAttributes.none)
            } else {
                #expect(snapshot.brands.id(at: Int(a.brand[row])) == "brand-\(row % 2)")
            }
            #expect(a.priceCents[row] == Int64(row * 100 + 25))
            #expect(a.inStock[row] == (row % 10 != 0 ? 1 : 0))
            #expect(a.popularity[row] == Float((row * 37) % 11))
            #expect(a.createdAt[row] == Int64(1_700_000_000 + row))
            let tags = (0..<snapshot.tags.count).filter { a.tags[row] & (1 << UInt64($0)) != 0 }
                .compactMap { snapshot.tags.id(at: $0) }.sorted()
            #expect(tags == [["new"], [], ["new", "sale"], ["eco"]][row % 4])
        }
        #expect(snapshot.userIds.row(for: "u_missing") == nil)
        #expect(snapshot.itemIds.row(for: "") == nil)
        #expect(snapshot.userIds.id(at: -1) == nil)
        #expect(snapshot.userIds.id(at: fixture.userVectors.count) == nil)
        #expect(snapshot.manifest.build.ignoredItemFields == ["extra"])
        try snapshot.verifyChecksums()
        try snapshot.verifyStructure()
        #expect(snapshot.prefault() > 0)
    }

    @Test func popularityAndPostingListsAreSortedPerCategory() throws {
        let fixture = try SnapshotFixture()
        try fixture.build()
        let snapshot = try Snapshot.open(directory: fixture.output)
        let a = snapshot.attributes
        let global = Array(snapshot.popularity.global.buffer).map(Int.init)
        let expected = (0..<30).sorted { (a.popularity[$0], -$0) > (a.popularity[$1], -$1) }
        #expect(global == expected)
        #expect(snapshot.popularity.categoryCount == 3)
        for category in 0..<3 {
            let name = snapshot.categories.id(at: category)!
            let members = (0..<30).filter { ["shoes", "hats", "bags"][$0 % 3] == name }
            #expect(snapshot.popularity.itemCount(inCategory: category) == members.count)
            #expect(Array(snapshot.popularity.rows(inCategory: category)).map(Int.init) == members)
            let ranked = Array(snapshot.popularity.mostPopular(inCategory: category)).map(Int.init)
            #expect(ranked == members.sorted { (a.popularity[$0], -$0) > (a.popularity[$1], -$1) })
        }
    }

    @Test(arguments: [VectorElementType.f16, .i8])
    func quantisedVectorsRoundTripWithinCodecError(type: VectorElementType) throws {
        let fixture = try SnapshotFixture()
        try fixture.build { $0.vectorType = type }
        let snapshot = try Snapshot.open(directory: fixture.output)
        #expect(snapshot.manifest.vectorType == type)
        for (row, original) in fixture.itemVectors.enumerated() {
            let stored = snapshot.itemVectors.vector(at: row)
            let maxAbs = original.map(abs).max()!
            let tolerance = type == .f16 ? maxAbs * 1e-3 : maxAbs / 127
            #expect(zip(stored, original).allSatisfy { abs($0 - $1) <= tolerance })
        }
        #expect(try snapshot.loadGraph()?.rowCount == fixture.itemVectors.count)
    }

    @Test func manifestCarriesRankingConfigLabelsAndChecksums() throws {
        let fixture = try SnapshotFixture()
        let config: JSONValue = .object(["k": .number(10), "experiments": .array([.object(["name": .string("a")])])])
        let manifest = try fixture.build {
            $0.rankingConfig = config
            $0.labels = ["model": "mf-2026-11"]
            $0.metric = .cosine
            $0.snapshotVersion = "2026-11-22.1"
        }
        let snapshot = try Snapshot.open(directory: fixture.output)
        #expect(snapshot.manifest == manifest)
        #expect(snapshot.manifest.ranking == config)
        #expect(try JSONDecoder().decode(JSONValue.self, from: snapshot.manifest.rankingConfigJSON) == config)
        #expect(snapshot.manifest.labels == ["model": "mf-2026-11"])
        #expect(snapshot.manifest.snapshotVersion == "2026-11-22.1")
        #expect(snapshot.metric == .cosine)
        #expect(snapshot.manifest.counts.users == 40 && snapshot.manifest.counts.items == 30)
        #expect(snapshot.manifest.counts.categories == 3 && snapshot.manifest.counts.brands == 2)
        for entry in manifest.files {
            let file = try MappedFile(path: fixture.output + "/" + entry.name)
            #expect(entry.size == file.count)
            #expect(entry.xxh64.count == 16)
        }
        #expect(try snapshot.loadGraph()?.metric == .cosine)
    }

    @Test func defaultRankingConfigIsStoredWhenNoneGiven() throws {
        let fixture = try SnapshotFixture()
        try fixture.build { $0.buildIndex = false }
        let snapshot = try Snapshot.open(directory: fixture.output)
        #expect(snapshot.manifest.ranking == SnapshotManifest.defaultRankingConfig)
        #expect(snapshot.graphPayload == nil)
        #expect(try snapshot.loadGraph() == nil)
        #expect(snapshot.manifest.build.hnsw == nil)
    }

    @Test func buildsAreByteIdenticalApartFromTheManifest() throws {
        let fixture = try SnapshotFixture()
        let first = try fixture.build()
        let second = try fixture.build {
            $0.output = fixture.root + "/snap-v2"; $0.threads = 2
        }
        #expect(first.files == second.files)
    }

    @Test func emptyCatalogueAndUserSetBuildAndOpen() throws {
        let fixture = try SnapshotFixture(userCount: 0, itemCount: 0)
        try SnapshotFixture.writeNPY(fixture.users, rows: [[Float]](repeating: [0], count: 0))
        try fixture.write(
            fixture.users,
            bytes: SnapshotFixture.npyBytes(
                header: "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 8), }", data: []))
        try fixture.write(
            fixture.items,
            bytes: SnapshotFixture.npyBytes(
                header: "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 8), }", data: []))
        try fixture.write(fixture.userIds, "")
        try fixture.write(fixture.itemsMeta, "")
        try fixture.build()
        let snapshot = try Snapshot.open(directory: fixture.output)
        #expect(snapshot.itemIds.count == 0 && snapshot.userIds.count == 0)
        try snapshot.verifyStructure()
        try snapshot.verifyChecksums()
    }
}

@Suite struct SyntheticDataTests {
    @Test func sameSeedWritesIdenticalFilesAndTheyBuild() throws {
        let fixture = try SnapshotFixture(userCount: 1, itemCount: 1)
        var options = SyntheticDataOptions()
        options.users = 300
        options.items = 200
        options.dimension = 12
        options.categories = 6
        let a = try SyntheticData.write(options, to: fixture.root + "/a")
        let b = try SyntheticData.write(options, to: fixture.root + "/b")
        for (x, y) in [(a.users, b.users), (a.userIds, b.userIds), (a.items, b.items), (a.itemsMeta, b.itemsMeta)] {
            #expect(FileManager.default.contentsEqual(atPath: x, andPath: y))
        }
        options.seed = 43
        let c = try SyntheticData.write(options, to: fixture.root + "/c")
        #expect(!FileManager.default.contentsEqual(atPath: a.items, andPath: c.items))

        var build = SnapshotBuildOptions(
            users: a.users, userIds: a.userIds, items: a.items, itemsMeta: a.itemsMeta, output: fixture.root + "/snap")
        build.threads = 1
        build.hnsw.efConstruction = 40
        try SnapshotBuilder.build(build)
        let snapshot = try Snapshot.open(directory: fixture.root + "/snap")
        #expect(snapshot.manifest.counts.items == 200 && snapshot.manifest.counts.users == 300)
        #expect(snapshot.categories.count <= 6)
        let inStock = (0..<200).filter { snapshot.attributes.inStock[$0] == 1 }.count
        #expect((150...200).contains(inStock))
        try snapshot.verifyStructure()
    }
}

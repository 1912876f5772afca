import Foundation
import Snapshot
import Testing
import VectorIndex

/// The filter index file: brand posting lists and per-value subgraphs, built, opened and validated.
@Suite struct FilterIndexTests {
    /// 60 items: three categories of 20, two brands of 24 (every fifth item has none).
    private func built(subgraphMinItems: Int = 20) throws -> SnapshotFixture {
        let fixture = try SnapshotFixture(userCount: 10, itemCount: 60, dimension: 8)
        try fixture.build { $0.subgraphMinItems = subgraphMinItems }
        return fixture
    }

    @Test func valuesAtTheThresholdGetSubgraphsOverExactlyTheirItems() throws {
        let fixture = try built()
        let snapshot = try Snapshot.open(directory: fixture.output)
        try snapshot.verifyStructure()
        let index = try #require(snapshot.filterIndex)
        #expect(snapshot.manifest.build.subgraphMinItems == 20)
        #expect(index.entries.map { "\($0.attribute) \($0.value) \($0.rowCount)" } == [
            "category 0 20", "category 1 20", "category 2 20", "brand 0 24", "brand 1 24",
        ])
        let loaded = try snapshot.loadSubgraphs()
        #expect(loaded.count == 5)
        let attributes = snapshot.attributes
        for (entry, subgraph) in loaded {
            let column = entry.attribute == .category ? attributes.category : attributes.brand
            let expected = (0..<60).filter { column[$0] == UInt32(entry.value) }.map(Int32.init)
            #expect(Array(subgraph.rows) == expected)
            #expect(subgraph.graph.rowCount == expected.count)
        }
        for brand in 0..<index.brandCount {
            let expected = (0..<60).filter { attributes.brand[$0] == UInt32(brand) }.map(UInt32.init)
            #expect(Array(index.rows(inBrand: brand)) == expected)
            #expect(index.itemCount(inBrand: brand) == expected.count)
        }
    }

    @Test func subgraphSearchReturnsTheValuesBestItems() throws {
        let fixture = try built()
        let snapshot = try Snapshot.open(directory: fixture.output)
        let global = try HNSWIndex(vectors: snapshot.itemVectors.matrix, graph: try #require(try snapshot.loadGraph()))
        let scratch = SearchScratch()
        var results: [SearchResult] = []
        for (entry, subgraph) in try snapshot.loadSubgraphs() {
            let query = fixture.userVectors[entry.value]
            try query.withUnsafeBufferPointer {
                _ = try global.search(
                    query: $0, k: 5, ef: 40, filter: AcceptAllRows(), within: subgraph, estimatedPassCount: nil,
                    scratch: scratch, into: &results)
            }
            var scored: [(row: Int32, score: Float)] = []
            for row in subgraph.rows {
                var score: Float = 0
                for (q, x) in zip(query, fixture.itemVectors[Int(row)]) { score += q * x }
                scored.append((row, score))
            }
            scored.sort { $0.score != $1.score ? $0.score > $1.score : $0.row < $1.row }
            #expect(results.map(\.row) == scored.prefix(5).map(\.row), "\(entry.attribute) \(entry.value)")
        }
    }

    @Test func noSubgraphsBelowTheThresholdOrWithoutTheGraph() throws {
        let fixture = try built(subgraphMinItems: 25)
        let snapshot = try Snapshot.open(directory: fixture.output)
        #expect(snapshot.filterIndex?.entries.isEmpty == true)
        let unindexed = try SnapshotFixture(userCount: 10, itemCount: 60, dimension: 8)
        try unindexed.build {
            $0.buildIndex = false
            $0.subgraphMinItems = 1
        }
        let plain = try Snapshot.open(directory: unindexed.output)
        try plain.verifyStructure()
        #expect(plain.filterIndex?.entries.isEmpty == true)
        #expect(plain.filterIndex?.brandCount == 2)
    }

    @Test func aSnapshotWithoutTheFileStillOpens() throws {
        let fixture = try built()
        let path = fixture.output + "/manifest.json"
        var manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        manifest["files"] = (manifest["files"] as! [[String: Any]]).filter {
            $0["name"] as? String != SnapshotFiles.filterIndex
        }
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: path))
        try FileManager.default.removeItem(atPath: fixture.output + "/" + SnapshotFiles.filterIndex)
        let snapshot = try Snapshot.open(directory: fixture.output)
        #expect(snapshot.filterIndex == nil)
        #expect(try snapshot.loadSubgraphs().isEmpty)
    }

    /// Directory entries and lists that lie are caught by open or by the structure check, naming the file.
    @Test(arguments: [
        (0, "unknown attribute"), (4, "is not in the dictionary"), (8, "not canonical"), (16, "not canonical"),
        (24, "out of place"), (32, "out of place"),
    ])
    func corruptDirectoryEntriesAreRejected(field: Int, message: String) throws {
        let fixture = try built()
        let path = fixture.output + "/" + SnapshotFiles.filterIndex
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let directory = Int(bytes.withUnsafeBytes { $0.load(fromByteOffset: 64 + 32, as: UInt64.self) })
        // The second entry (category 1), so an out-of-order value is also possible.
        bytes[directory + 40 + field] ^= field == 4 || field == 32 ? 0x40 : 0x07
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: SnapshotError.self) {
            let snapshot = try Snapshot.open(directory: fixture.output)
            try snapshot.verifyStructure()
            _ = try snapshot.loadSubgraphs()
        }
        #expect("\(error!)".contains(SnapshotFiles.filterIndex), "\(error!)")
        #expect("\(error!)".contains(message), "\(error!)")
    }

    @Test func swappedSubgraphRowsFailTheStructureCheck() throws {
        let fixture = try built()
        let path = fixture.output + "/" + SnapshotFiles.filterIndex
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let rows = Int(bytes.withUnsafeBytes { $0.load(fromByteOffset: 64 + 48, as: UInt64.self) })
        // Row 0 of category 0 becomes row 1 (a hat): open cannot tell, the structure check must.
        bytes[rows] = 1
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let snapshot = try Snapshot.open(directory: fixture.output)
        let error = #expect(throws: SnapshotError.self) { try snapshot.verifyStructure() }
        #expect("\(error!)".contains("lacks the value"), "\(error!)")
    }
}

import Foundation
import Snapshot
import Testing
import VectorIndex

/// The filter index file: brand posting lists and per-value indexes (rows, quantised blocks, graphs), built, opened
/// and validated.
@Suite struct FilterIndexTests {
    /// 60 items: three categories of 20, two brands of 24 (every fifth item has none).
    private func built(subgraphMinItems: Int = 20, quantisedMinItems: Int = 0) throws -> SnapshotFixture {
        let fixture = try SnapshotFixture(userCount: 10, itemCount: 60, dimension: 8)
        try fixture.build {
            $0.subgraphMinItems = subgraphMinItems
            $0.quantisedMinItems = quantisedMinItems
        }
        return fixture
    }

    @Test func valuesAtTheThresholdGetGraphsOverExactlyTheirItems() throws {
        let fixture = try built()
        let snapshot = try Snapshot.open(directory: fixture.output)
        try snapshot.verifyStructure()
        let index = try #require(snapshot.filterIndex)
        #expect(snapshot.manifest.build.subgraphMinItems == 20)
        #expect(
            index.entries.map { "\($0.attribute) \($0.value) \($0.rowCount)" } == [
                "category 0 20", "category 1 20", "category 2 20", "brand 0 24", "brand 1 24",
            ])
        let loaded = try snapshot.loadValueIndexes()
        #expect(loaded.count == 5)
        let attributes = snapshot.attributes
        for (entry, index) in loaded {
            let column = entry.attribute == .category ? attributes.category : attributes.brand
            let expected = (0..<60).filter { column[$0] == UInt32(entry.value) }.map(Int32.init)
            #expect(Array(index.rows) == expected)
            #expect(index.graph?.rowCount == expected.count)
            #expect(index.quantised.count == expected.count)
        }
        for brand in 0..<index.brandCount {
            let expected = (0..<60).filter { attributes.brand[$0] == UInt32(brand) }.map(UInt32.init)
            #expect(Array(index.rows(inBrand: brand)) == expected)
            #expect(index.itemCount(inBrand: brand) == expected.count)
        }
    }

    @Test func valueIndexSearchReturnsTheValuesBestItems() throws {
        let fixture = try built()
        let snapshot = try Snapshot.open(directory: fixture.output)
        let scratch = SearchScratch()
        var results: [SearchResult] = []
        for (entry, index) in try snapshot.loadValueIndexes() {
            let query = fixture.userVectors[entry.value]
            try query.withUnsafeBufferPointer {
                _ = try index.search(
                    query: $0, k: 5, ef: 40, filter: AcceptAllRows(), estimatedPassCount: nil,
                    vectors: snapshot.itemVectors.matrix, metric: snapshot.metric, scratch: scratch, into: &results)
            }
            var scored: [(row: Int32, score: Float)] = []
            for row in index.rows {
                var score: Float = 0
                for (q, x) in zip(query, fixture.itemVectors[Int(row)]) { score += q * x }
                scored.append((row, score))
            }
            scored.sort { $0.score != $1.score ? $0.score > $1.score : $0.row < $1.row }
            #expect(results.map(\.row) == scored.prefix(5).map(\.row), "\(entry.attribute) \(entry.value)")
        }
    }

    @Test func noValueIndexesBelowTheThresholdsAndNoGraphsWithoutTheGlobalGraph() throws {
        let fixture = try built(subgraphMinItems: 25)
        let snapshot = try Snapshot.open(directory: fixture.output)
        #expect(snapshot.filterIndex?.entries.isEmpty == true)
        let unindexed = try SnapshotFixture(userCount: 10, itemCount: 60, dimension: 8)
        try unindexed.build {
            $0.buildIndex = false
            $0.subgraphMinItems = 1
            $0.quantisedMinItems = 0
        }
        let plain = try Snapshot.open(directory: unindexed.output)
        try plain.verifyStructure()
        #expect(plain.filterIndex?.entries.isEmpty == true)
        #expect(plain.filterIndex?.brandCount == 2)
        #expect(plain.manifest.build.subgraphMinItems == 0)
    }

    @Test func valuesBetweenTheThresholdsGetAQuantisedBlockWithoutAGraph() throws {
        // Brands (24 items) reach the graph threshold, categories (20) only the block threshold.
        let fixture = try built(subgraphMinItems: 24, quantisedMinItems: 10)
        let snapshot = try Snapshot.open(directory: fixture.output)
        try snapshot.verifyStructure()
        let loaded = try snapshot.loadValueIndexes()
        #expect(
            loaded.map { "\($0.entry.attribute) \($0.entry.value) \($0.entry.hasGraph)" } == [
                "category 0 false", "category 1 false", "category 2 false", "brand 0 true", "brand 1 true",
            ])
        #expect(loaded.allSatisfy { ($0.index.graph != nil) == $0.entry.hasGraph })
        #expect(snapshot.manifest.build.quantisedMinItems == 10)
        // Even without the global graph, blocks are written (graphs are not).
        let plain = try SnapshotFixture(userCount: 10, itemCount: 60, dimension: 8)
        try plain.build {
            $0.buildIndex = false
            $0.subgraphMinItems = 1
            $0.quantisedMinItems = 10
        }
        let opened = try Snapshot.open(directory: plain.output)
        try opened.verifyStructure()
        #expect(try opened.loadValueIndexes().map(\.entry.hasGraph) == [false, false, false, false, false])
    }

    @Test func aQuantisedBlockThatDriftedFromTheVectorsFailsTheStructureCheck() throws {
        let fixture = try built(subgraphMinItems: 0, quantisedMinItems: 10)
        let path = fixture.output + "/" + SnapshotFiles.filterIndex
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // Section 5 (blocks) starts at the sixth section-table entry; flip one int8 of its first row.
        let blocks = Int(bytes.withUnsafeBytes { $0.load(fromByteOffset: 64 + 16 * 5, as: UInt64.self) })
        bytes[blocks + 4 + 3] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let snapshot = try Snapshot.open(directory: fixture.output)
        let error = #expect(throws: SnapshotError.self) { try snapshot.verifyStructure() }
        #expect("\(error!)".contains("does not match item row"), "\(error!)")
    }

    @Test func aSnapshotWithoutTheFileStillOpens() throws {
        let fixture = try built()
        let path = fixture.output + "/manifest.json"
        var manifest =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        manifest["files"] = (manifest["files"] as! [[String: Any]]).filter {
            $0["name"] as? String != SnapshotFiles.filterIndex
        }
        try JSONSerialization.data(withJSONObject: manifest).write(to: URL(fileURLWithPath: path))
        try FileManager.default.removeItem(atPath: fixture.output + "/" + SnapshotFiles.filterIndex)
        let snapshot = try Snapshot.open(directory: fixture.output)
        #expect(snapshot.filterIndex == nil)
        #expect(try snapshot.loadValueIndexes().isEmpty)
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
            _ = try snapshot.loadValueIndexes()
        }
        #expect("\(error!)".contains(SnapshotFiles.filterIndex), "\(error!)")
        #expect("\(error!)".contains(message), "\(error!)")
    }

    @Test func swappedValueRowsFailTheStructureCheck() throws {
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

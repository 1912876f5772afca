import Foundation
import Snapshot
import Testing
import VectorIndex

/// `partitions.ivf`: the items grouped by k-means partition with their quantised copy, built, opened, searched and
/// validated.
@Suite struct PartitionFileTests {
    private func built(partitions: Int? = 6, minItems: Int = 1) throws -> SnapshotFixture {
        let fixture = try SnapshotFixture(userCount: 10, itemCount: 60, dimension: 8)
        try fixture.build {
            $0.partitions = partitions
            $0.partitionMinItems = minItems
        }
        return fixture
    }

    @Test func everyItemIsInOnePartitionAndProbingAllFindsTheExactTopK() throws {
        let fixture = try built()
        let snapshot = try Snapshot.open(directory: fixture.output)
        try snapshot.verifyStructure()
        #expect(snapshot.manifest.build.partitions == 6)
        let index = try #require(try snapshot.loadPartitions())
        #expect(index.partitionCount == 6)
        #expect(Array(index.rows).sorted() == (0..<60).map(Int32.init))
        let scratch = SearchScratch()
        var results: [SearchResult] = []
        for query in fixture.userVectors {
            try query.withUnsafeBufferPointer {
                _ = try index.search(
                    query: $0, k: 5, probeRows: 60, filter: AcceptAllRows(), vectors: snapshot.itemVectors.matrix,
                    metric: snapshot.metric, scratch: scratch, into: &results)
            }
            let scored = fixture.itemVectors.enumerated().map { row, item in
                (row: row, score: zip(query, item).reduce(Float(0)) { $0 + $1.0 * $1.1 })
            }.sorted { $0.score != $1.score ? $0.score > $1.score : $0.row < $1.row }
            #expect(results.map { Int($0.row) } == scored.prefix(5).map(\.row))
        }
    }

    @Test func smallCatalogueAndPartitionsOffBuildNone() throws {
        for fixture in [try built(minItems: 61), try built(partitions: 0)] {
            let snapshot = try Snapshot.open(directory: fixture.output)
            #expect(snapshot.partitions == nil)
            #expect(snapshot.manifest.build.partitions == nil)
            #expect(!FileManager.default.fileExists(atPath: fixture.output + "/" + SnapshotFiles.partitions))
        }
    }

    /// Rewrites `partitions.ivf` with `edit` applied to its bytes (the manifest checksum is not what is tested).
    private func corrupted(_ edit: (inout [UInt8], _ section: (Int) -> Int) -> Void) throws -> Snapshot {
        let fixture = try built()
        let path = fixture.output + "/" + SnapshotFiles.partitions
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let offsets = (0..<4).map { index in
            Int(bytes.withUnsafeBytes { $0.load(fromByteOffset: 64 + 16 * index, as: UInt64.self) })
        }
        edit(&bytes) { offsets[$0] }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return try Snapshot.open(directory: fixture.output)
    }

    @Test func aRowListedTwiceFailsTheStructureCheck() throws {
        let snapshot = try corrupted { bytes, section in
            // Local id 1 takes local id 0's row (both are in the first partitions, ascending order may break too).
            let rows = section(2)
            for i in 0..<4 { bytes[rows + 4 + i] = bytes[rows + i] }
        }
        let error = #expect(throws: SnapshotError.self) {
            try snapshot.verifyStructure()
            _ = try snapshot.loadPartitions()
        }
        let text = "\(error!)"
        #expect(text.contains("two partitions") || text.contains("ascending"), "\(text)")
    }

    @Test func aQuantisedRowThatDriftedFromTheVectorsFailsTheStructureCheck() throws {
        let snapshot = try corrupted { bytes, section in bytes[section(3) + 4 + 2] ^= 0x01 }
        let error = #expect(throws: SnapshotError.self) { try snapshot.verifyStructure() }
        #expect("\(error!)".contains("does not match item row"), "\(error!)")
    }

    @Test func startsPastTheRowsAreRejectedWhenLoading() throws {
        let snapshot = try corrupted { bytes, section in
            let last = section(1) + 4 * 6
            bytes.replaceSubrange(last..<(last + 4), with: [61, 0, 0, 0])
        }
        #expect(throws: SnapshotError.self) { _ = try snapshot.loadPartitions() }
    }
}

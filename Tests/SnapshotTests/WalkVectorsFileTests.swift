import Foundation
import MappedStorage
import Snapshot
import Testing
import VectorIndex

/// `item_walk.i8`: the item vectors' `i8` copy the graph walk scores, built, opened, validated and refused when
/// corrupt.
@Suite struct WalkVectorsFileTests {
    private func built(_ configure: (inout SnapshotBuildOptions) -> Void = { _ in }) throws -> SnapshotFixture {
        let fixture = try SnapshotFixture(userCount: 10, itemCount: 60, dimension: 8)
        try fixture.build {
            $0.int8WalkMinVectorBytes = 0  // the fixture is far below the default size threshold
            configure(&$0)
        }
        return fixture
    }

    @Test func writtenOnlyFromTheSizeThresholdOn() throws {
        // 60 items × 8 × 4 bytes = 1,920 bytes of f32 vectors.
        for (threshold, written) in [
            (SnapshotBuildOptions.defaultInt8WalkMinVectorBytes, false), (1_921, false), (1_920, true), (0, true),
        ] {
            let fixture = try built { $0.int8WalkMinVectorBytes = threshold }
            let snapshot = try Snapshot.open(directory: fixture.output)
            #expect((snapshot.walkVectors != nil) == written, "threshold \(threshold)")
            #expect(
                FileManager.default.fileExists(atPath: fixture.output + "/" + SnapshotFiles.walkVectors) == written)
        }
    }

    @Test func everyRowIsItsItemReEncodedAndTheSectionIsChecksummed() throws {
        let fixture = try built()
        let snapshot = try Snapshot.open(directory: fixture.output)
        try snapshot.verifyChecksums()
        try snapshot.verifyStructure()
        let walk = try #require(snapshot.walkVectors)
        #expect(walk.matrix.count == 60 && walk.matrix.dimension == 8 && walk.matrix.elementType == .i8)
        #expect(snapshot.manifest.files.contains { $0.name == SnapshotFiles.walkVectors })
        #expect(snapshot.manifest.build.walkVectorsSeconds != nil)
        let stride = VectorCodec.rowStride(dimension: 8, type: .i8)
        for (row, vector) in fixture.itemVectors.enumerated() {
            var encoded = [UInt8](repeating: 0, count: stride)
            vector.withUnsafeBufferPointer { source in
                encoded.withUnsafeMutableBytes { VectorCodec.encode(source, as: .i8, into: $0) }
            }
            #expect(Array(walk.matrix.rowBytes(row)) == encoded, "row \(row)")
        }
    }

    @Test func offAtBuildTimeWithoutAGraphOrForI8VectorsBuildsNone() throws {
        for configure: (inout SnapshotBuildOptions) -> Void in [
            { $0.int8Walk = false }, { $0.buildIndex = false }, { $0.vectorType = .i8 },
        ] {
            let fixture = try built(configure)
            let snapshot = try Snapshot.open(directory: fixture.output)
            #expect(snapshot.walkVectors == nil)
            #expect(snapshot.manifest.build.walkVectorsSeconds == nil)
            #expect(!FileManager.default.fileExists(atPath: fixture.output + "/" + SnapshotFiles.walkVectors))
        }
    }

    /// Rewrites `item_walk.i8` with `edit` applied to its bytes; `rechecksum` also updates the manifest, so only the
    /// structure check can catch the edit.
    private func corrupted(
        rechecksum: Bool = false, _ edit: (inout [UInt8]) -> Void
    ) throws -> (SnapshotFixture, String) {
        let fixture = try built()
        let path = fixture.output + "/" + SnapshotFiles.walkVectors
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        edit(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        if rechecksum {
            let manifestPath = fixture.output + "/" + SnapshotFiles.manifest
            var manifest = try Snapshot.readManifest(directory: fixture.output)
            let index = try #require(manifest.files.firstIndex { $0.name == SnapshotFiles.walkVectors })
            let hash = String(bytes.withUnsafeBytes { XXHash64.hash($0) }, radix: 16)
            manifest.files[index].xxh64 = String(repeating: "0", count: 16 - hash.count) + hash
            try JSONEncoder().encode(manifest).write(to: URL(fileURLWithPath: manifestPath))
        }
        return (fixture, path)
    }

    /// The first walk row's first value byte (after the header, the table and the row's 4-byte scale).
    private static let firstValue = 128 + 4

    @Test func aFlippedByteFailsTheChecksumNamingTheFile() throws {
        let (fixture, _) = try corrupted { $0[Self.firstValue] ^= 0x01 }
        let snapshot = try Snapshot.open(directory: fixture.output)
        let error = #expect(throws: SnapshotError.self) { try snapshot.verifyChecksums() }
        #expect("\(error!)".contains(SnapshotFiles.walkVectors), "\(error!)")
    }

    @Test func aRowThatDriftedFromTheVectorsFailsTheStructureCheckNamingTheFile() throws {
        let (fixture, _) = try corrupted(rechecksum: true) { $0[Self.firstValue] ^= 0x01 }
        let snapshot = try Snapshot.open(directory: fixture.output)
        try snapshot.verifyChecksums()
        let error = #expect(throws: SnapshotError.self) { try snapshot.verifyStructure() }
        let text = "\(error!)"
        #expect(text.contains(SnapshotFiles.walkVectors) && text.contains("does not match item row 0"), "\(text)")
    }

    @Test func aWrongRowCountIsRefusedAtOpenNamingTheFile() throws {
        let (fixture, _) = try corrupted(rechecksum: true) { $0[32] = 59 }
        let error = #expect(throws: SnapshotError.self) { _ = try Snapshot.open(directory: fixture.output) }
        #expect("\(error!)".contains(SnapshotFiles.walkVectors), "\(error!)")
    }

    @Test func aSnapshotWithoutTheSectionStillOpens() throws {
        // As written before the section existed: the file gone and the manifest not listing it.
        let fixture = try built()
        try FileManager.default.removeItem(atPath: fixture.output + "/" + SnapshotFiles.walkVectors)
        var manifest = try Snapshot.readManifest(directory: fixture.output)
        manifest.files.removeAll { $0.name == SnapshotFiles.walkVectors }
        manifest.build.walkVectorsSeconds = nil
        try JSONEncoder().encode(manifest).write(
            to: URL(fileURLWithPath: fixture.output + "/" + SnapshotFiles.manifest))
        let snapshot = try Snapshot.open(directory: fixture.output)
        try snapshot.verifyChecksums()
        try snapshot.verifyStructure()
        #expect(snapshot.walkVectors == nil)
        #expect(try snapshot.loadGraph() != nil)
    }
}

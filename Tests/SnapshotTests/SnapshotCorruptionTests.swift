import Foundation
import Snapshot
import Testing

/// Corruption suite: a damaged snapshot must produce a `SnapshotError`, never a crash, an
/// out-of-bounds read or a silently wrong answer.
@Suite struct SnapshotCorruptionTests {
    /// One small built snapshot per test (building takes milliseconds).
    private func built() throws -> SnapshotFixture {
        let fixture = try SnapshotFixture(userCount: 12, itemCount: 20, dimension: 4)
        try fixture.build()
        return fixture
    }

    private func binaryFiles(_ fixture: SnapshotFixture) throws -> [String] {
        try Snapshot.open(directory: fixture.output).manifest.files.map(\.name)
    }

    /// Everything activation runs except checksums: must catch any header damage on its own.
    private func openAndCheckStructure(_ directory: String) throws {
        let snapshot = try Snapshot.open(directory: directory)
        try snapshot.verifyStructure()
        _ = try snapshot.loadGraph()
        _ = try snapshot.loadValueIndexes()
    }

    /// Replaces one byte in place (no rewrite of the file) and returns the old value.
    private func patch(_ path: String, at offset: Int, _ transform: (UInt8) -> UInt8) throws -> UInt8 {
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        let original = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: [transform(original)])
        return original
    }

    private func writeUInt64(_ path: String, at offset: Int, _ value: UInt64) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(offset..<(offset + 8), with: $0) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    private func truncate(_ path: String, to size: Int) throws {
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.truncate(atOffset: UInt64(size))
        try handle.close()
    }

    /// Rewrites the manifest entry of `name` to the file's current size (so open gets past the size
    /// check and the file's own header validation is what must catch the damage).
    private func resyncManifestSize(_ fixture: SnapshotFixture, _ name: String) throws {
        let path = fixture.output + "/manifest.json"
        var manifest = try JSONDecoder().decode(
            SnapshotManifest.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        let size = try FileManager.default.attributesOfItem(atPath: fixture.output + "/" + name)[.size] as! Int
        manifest.files = manifest.files.map { entry in
            var entry = entry
            if entry.name == name { entry.size = size }
            return entry
        }
        try JSONEncoder().encode(manifest).write(to: URL(fileURLWithPath: path))
    }

    @Test func truncatingAnyFileAtSeveralPointsFailsCleanly() throws {
        let fixture = try built()
        for name in try binaryFiles(fixture) {
            let path = fixture.output + "/" + name
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            for cut in Set([0, 1, 8, 63, 64, 100, original.count / 2, original.count - 64, original.count - 1])
            where cut >= 0 && cut < original.count {
                try truncate(path, to: cut)
                #expect(throws: SnapshotError.self, "\(name) cut at \(cut)") {
                    try Snapshot.open(directory: fixture.output)
                }
                try resyncManifestSize(fixture, name)
                #expect(throws: SnapshotError.self, "\(name) cut at \(cut), manifest resynced") {
                    try openAndCheckStructure(fixture.output)
                }
                try original.write(to: URL(fileURLWithPath: path))
                try resyncManifestSize(fixture, name)
            }
        }
        try openAndCheckStructure(fixture.output)
    }

    @Test func flippingAnyHeaderByteIsDetectedWithoutChecksums() throws {
        let fixture = try built()
        for name in try binaryFiles(fixture) {
            let path = fixture.output + "/" + name
            // Header (64 bytes) + section table + its zero padding: the first section starts at 128
            // for kinds of ≤ 4 sections; the 7-section attribute and 6-section filter index files start at 192.
            let headerEnd = [SnapshotFiles.itemAttributes, SnapshotFiles.filterIndex].contains(name) ? 192 : 128
            for offset in 0..<headerEnd {
                for mask: UInt8 in [0x01, 0x80] {
                    let original = try patch(path, at: offset) { $0 ^ mask }
                    #expect(throws: SnapshotError.self, "\(name) byte \(offset) ^ \(mask)") {
                        try openAndCheckStructure(fixture.output)
                    }
                    _ = try patch(path, at: offset) { _ in original }
                }
            }
        }
        try openAndCheckStructure(fixture.output)
    }

    @Test func flippedDataByteFailsChecksumNamingTheFile() throws {
        let fixture = try built()
        for name in try binaryFiles(fixture) {
            let path = fixture.output + "/" + name
            let size = try Data(contentsOf: URL(fileURLWithPath: path)).count
            let original = try patch(path, at: size - 70) { $0 ^ 0x10 }
            let snapshot = try Snapshot.open(directory: fixture.output)
            #expect {
                try snapshot.verifyChecksums()
            } throws: { error in
                guard case .checksumMismatch(let file, _, _) = error as? SnapshotError else { return false }
                return file == name
            }
            _ = try patch(path, at: size - 70) { _ in original }
        }
        try Snapshot.open(directory: fixture.output).verifyChecksums()
    }

    @Test func hugeCountsAndOffsetsPastTheEndAreRejected() throws {
        let fixture = try built()
        let cases: [(file: String, offset: Int, value: UInt64)] = [
            (SnapshotFiles.userVectors, 32, UInt64.max),  // row count
            (SnapshotFiles.userVectors, 32, 1 << 31),
            (SnapshotFiles.userVectors, 40, 1 << 62),  // dimension
            (SnapshotFiles.itemIds, 32, UInt64(Int32.max)),  // id count
            (SnapshotFiles.itemIds, 40, 1 << 63),  // bucket count
            (SnapshotFiles.itemIds, 56, UInt64.max),  // heap size
            (SnapshotFiles.itemAttributes, 32, UInt64.max / 2),
            (SnapshotFiles.popularity, 48, UInt64.max),
            (SnapshotFiles.userVectors, 64, 1 << 40),  // section 0 offset past the end
            (SnapshotFiles.userVectors, 72, UInt64.max),  // section 0 length
            (SnapshotFiles.itemIds, 96, UInt64.max - 63),  // section 2 offset wraps when added
            (SnapshotFiles.graph, 72, 1 << 50),
        ]
        for c in cases {
            let path = fixture.output + "/" + c.file
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            try writeUInt64(path, at: c.offset, c.value)
            #expect(throws: SnapshotError.self, "\(c.file) @\(c.offset) = \(c.value)") {
                try openAndCheckStructure(fixture.output)
            }
            try original.write(to: URL(fileURLWithPath: path))
        }
        try openAndCheckStructure(fixture.output)
    }

    @Test func corruptCategoryStartsAndRowsAreRejected() throws {
        let fixture = try built()
        let path = fixture.output + "/" + SnapshotFiles.popularity
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        // Section 1 (category starts) begins at 128 + roundUp(20 × 4) = 256: make start[1] huge.
        try writeUInt64(path, at: 256 + 8, 1 << 40)
        #expect(throws: SnapshotError.self) { try Snapshot.open(directory: fixture.output) }
        try original.write(to: URL(fileURLWithPath: path))
        // Global list entry 0 → a row past the end: open is O(1) and accepts it; structure check must not.
        _ = try patch(path, at: 128 + 3) { _ in 0x7F }
        let snapshot = try Snapshot.open(directory: fixture.output)
        #expect(throws: SnapshotError.self) { try snapshot.verifyStructure() }
    }

    @Test func bucketPointingOutsideTheHeapIsAMissNotACrash() throws {
        let fixture = try built()
        let path = fixture.output + "/" + SnapshotFiles.itemIds
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // Buckets start at 128, 16 bytes each: find an occupied one and aim its location word past the heap.
        let slot = try #require((0..<64).first { bytes[128 + 16 * $0] != 0xFF })
        let row = bytes[128 + 16 * slot..<128 + 16 * slot + 4].reversed().reduce(0) { $0 << 8 | Int($1) }
        try writeUInt64(path, at: 128 + 16 * slot + 8, 1 << 39 | 5 << 40)
        let snapshot = try Snapshot.open(directory: fixture.output)
        #expect(snapshot.itemIds.row(for: "sku-\(row)") == nil)
        #expect(snapshot.itemIds.id(at: row) == "sku-\(row)")
        #expect(throws: SnapshotError.self) { try snapshot.verifyStructure() }
    }

    @Test func manifestProblemsAreReportedByField() throws {
        let fixture = try built()
        let path = fixture.output + "/manifest.json"
        let original = try String(contentsOfFile: path, encoding: .utf8)
        let edits: [(String, (String) -> String)] = [
            ("bad JSON", { String($0.dropLast(5)) }),
            ("format version", { $0.replacingOccurrences(of: "\"formatVersion\" : 2", with: "\"formatVersion\" : 3") }),
            ("missing field", { $0.replacingOccurrences(of: "\"dimension\"", with: "\"dimensionX\"") }),
            ("unknown file", { $0.replacingOccurrences(of: "\"tags.ids\"", with: "\"../tags.ids\"") }),
            ("listed twice", { $0.replacingOccurrences(of: "\"popularity.pop\"", with: "\"brands.ids\"") }),
            ("wrong size", { $0.replacingOccurrences(of: "\"size\" : ", with: "\"size\" : 1") }),
            ("count mismatch", { $0.replacingOccurrences(of: "\"users\" : 12", with: "\"users\" : 13") }),
            ("dimension mismatch", { $0.replacingOccurrences(of: "\"dimension\" : 4", with: "\"dimension\" : 5") }),
            (
                "vector type",
                { $0.replacingOccurrences(of: "\"vectorType\" : \"f32\"", with: "\"vectorType\" : \"i8\"") }
            ),
            ("metric", { $0.replacingOccurrences(of: "\"metric\" : \"ip\"", with: "\"metric\" : \"hamming\"") }),
        ]
        for (what, edit) in edits {
            let edited = edit(original)
            #expect(edited != original, "edit \(what) changed nothing")
            try edited.write(toFile: path, atomically: false, encoding: .utf8)
            #expect(throws: SnapshotError.self, "\(what)") { try Snapshot.open(directory: fixture.output) }
        }
        var manifest = try JSONDecoder().decode(SnapshotManifest.self, from: Data(original.utf8))
        manifest.files.removeAll { $0.name == SnapshotFiles.popularity }
        try JSONEncoder().encode(manifest).write(to: URL(fileURLWithPath: path))
        #expect(throws: SnapshotError.manifest(file: SnapshotFiles.manifest, reason: "files list lacks popularity.pop"))
        {
            try Snapshot.open(directory: fixture.output)
        }
        try FileManager.default.removeItem(atPath: path)
        #expect(throws: SnapshotError.self) { try Snapshot.open(directory: fixture.output) }
    }

    @Test func missingFileFailsAndNothingStaysMapped() throws {
        let fixture = try built()
        try FileManager.default.removeItem(atPath: fixture.output + "/" + SnapshotFiles.popularity)
        #expect(throws: SnapshotError.self) { try Snapshot.open(directory: fixture.output) }
        let maps = String(
            decoding: try FileHandle(forReadingAtPath: "/proc/self/maps")!.readToEnd() ?? Data(), as: UTF8.self)
        #expect(!maps.contains(fixture.output))
    }

    @Test func graphForAnotherMetricIsRejected() throws {
        let fixture = try built()
        let path = fixture.output + "/manifest.json"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try text.replacingOccurrences(of: "\"metric\" : \"ip\"", with: "\"metric\" : \"cosine\"")
            .write(toFile: path, atomically: false, encoding: .utf8)
        let snapshot = try Snapshot.open(directory: fixture.output)
        #expect(throws: SnapshotError.self) { try snapshot.loadGraph() }
    }
}

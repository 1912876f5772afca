import Foundation
import Glibc
import MappedStorage
import TestSupport
import Testing

@Suite struct MappedFileTests {
    @Test func mapsFileContentsReadOnly() throws {
        let dir = try TemporaryDirectory()
        let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let file = try MappedFile(path: try dir.file("a.bin", contents: bytes))
        #expect(file.count == bytes.count)
        #expect(Array(file.bytes) == bytes)
        #expect(file.prefault() == (bytes.count + 4095) / 4096)
    }

    @Test func mapsEmptyFileAsEmptyView() throws {
        let dir = try TemporaryDirectory()
        let file = try MappedFile(path: try dir.file("empty.bin", contents: []))
        #expect(file.count == 0)
        #expect(file.bytes.isEmpty)
        #expect(file.prefault() == 0)
        #expect(throws: MappedStorageError.self) { try file.view.load(UInt8.self, at: 0) }
    }

    @Test func missingFileThrowsOpenFailedNamingPath() throws {
        #expect(throws: MappedStorageError.openFailed(path: "/nonexistent/x.bin", errno: ENOENT)) {
            try MappedFile(path: "/nonexistent/x.bin")
        }
    }

    @Test func directoryIsRejectedAsNotRegularFile() throws {
        let dir = try TemporaryDirectory()
        #expect(throws: MappedStorageError.notRegularFile(path: dir.path)) { try MappedFile(path: dir.path) }
    }

    @Test func unmapsWhenLastReferenceGoes() throws {
        let dir = try TemporaryDirectory()
        let path = try dir.file("b.bin", contents: [UInt8](repeating: 1, count: 1 << 16))
        func mappingCount() throws -> Int {
            // /proc files report size 0, so read them to the end rather than trusting a length.
            let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/maps"))
            defer { try? handle.close() }
            let text = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
            return text.split(separator: "\n").filter { $0.hasSuffix(path) }.count
        }
        do {
            let file = try MappedFile(path: path)
            #expect(try mappingCount() == 1)
            _ = file.prefault()
        }
        #expect(try mappingCount() == 0)
    }
}

@Suite struct ByteViewTests {
    private func withView(_ bytes: [UInt8], _ body: (ByteView) throws -> Void) throws {
        try bytes.withUnsafeBytes { try body(ByteView(bytes: $0, name: "t.bin")) }
    }

    @Test func readsLittleEndianIntegersUnaligned() throws {
        try withView([0xFF, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0]) { (view) throws in
            #expect(try view.load(UInt32.self, at: 1) == 0x0403_0201)
            #expect(try view.load(UInt64.self, at: 1) == 0x0403_0201)
        }
    }

    @Test func rejectsReadsPastTheEndWithFileAndOffset() throws {
        try withView([UInt8](repeating: 0, count: 16)) { (view) throws in
            #expect(throws: MappedStorageError.outOfBounds(path: "t.bin", offset: 12, count: 8, size: 16)) {
                try view.load(UInt64.self, at: 12)
            }
            #expect(throws: MappedStorageError.self) { try view.slice(offset: -1, count: 1) }
            #expect(throws: MappedStorageError.self) { try view.slice(offset: Int.max, count: 2) }
            #expect(throws: MappedStorageError.self) { try view.slice(offset: 1, count: Int.max) }
        }
    }

    @Test func slicesReportAbsoluteOffsetsInErrors() throws {
        try withView([UInt8](repeating: 0, count: 64)) { (view) throws in
            let inner = try view.slice(offset: 32, count: 16)
            #expect(throws: MappedStorageError.outOfBounds(path: "t.bin", offset: 44, count: 8, size: 48)) {
                try inner.load(UInt64.self, at: 12)
            }
        }
    }

    @Test func columnsRejectOverflowingCountsAndMisalignment() throws {
        let words: [UInt32] = [7, 8, 9, 10]
        try words.withUnsafeBytes { (raw) throws in
            let view = ByteView(bytes: raw, name: "c.bin")
            let column = try view.column(UInt32.self, offset: 4, count: 3)
            #expect(column.count == 3)
            #expect(column[0] == 8 && column[2] == 10)
            #expect(throws: MappedStorageError.self) { try view.column(UInt32.self, offset: 4, count: 4) }
            #expect(throws: MappedStorageError.self) { try view.column(UInt64.self, offset: 0, count: Int.max / 4) }
            #expect(throws: MappedStorageError.misaligned(path: "c.bin", offset: 2, alignment: 4)) {
                try view.column(UInt32.self, offset: 2, count: 1)
            }
        }
    }
}

@Suite struct XXHash64Tests {
    // Reference values from the `xxhash` Python package (the C reference implementation).
    @Test func matchesReferenceImplementation() {
        #expect(XXHash64.hash("") == 0xEF46_DB37_51D8_E999)
        #expect(XXHash64.hash("a") == 0xD24E_C4F1_A98C_6E5B)
        #expect(XXHash64.hash("abc") == 0x44BC_2CF5_AD77_0999)
        #expect(XXHash64.hash("abc", seed: 7) == 0x9E75_5206_1566_76D7)
        #expect(XXHash64.hash("0123456789abcdef0123456789abcdef01234") == 0x3F88_9232_C274_3804)
        let long = [UInt8]((0..<768).map { UInt8($0 % 256) })
        long.withUnsafeBytes { raw in
            #expect(XXHash64.hash(raw) == 0x8E03_C838_C596_036F)
            #expect(XXHash64.hash(raw, seed: 7) == 0xB1E1_0F6C_5294_CD6B)
        }
    }
}

@Suite struct XXHash64HasherTests {
    @Test func incrementalHashMatchesOneShotForAnySplit() throws {
        var random = SeededGenerator(seed: 11)
        for length in [0, 1, 7, 31, 32, 33, 63, 64, 100, 1000] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            try bytes.withUnsafeBytes { (raw) throws in
                let expected = XXHash64.hash(raw, seed: 5)
                // Drip-fed one byte at a time, then at random split points.
                var drip = XXHash64.Hasher(seed: 5)
                for index in 0..<length { drip.update(UnsafeRawBufferPointer(rebasing: raw[index..<(index + 1)])) }
                #expect(drip.finalize() == expected, "length \(length), one byte at a time")
                for _ in 0..<20 {
                    var hasher = XXHash64.Hasher(seed: 5)
                    var offset = 0
                    while offset < length {
                        let next = min(length, offset + Int.random(in: 0...70, using: &random))
                        hasher.update(UnsafeRawBufferPointer(rebasing: raw[offset..<next]))
                        offset = next
                    }
                    #expect(hasher.finalize() == expected, "length \(length), random splits")
                }
            }
        }
    }

    @Test func hashFileMatchesHashOfContents() throws {
        let dir = try TemporaryDirectory()
        let bytes = (0..<((4 << 20) + 999)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let path = try dir.file("h.bin", contents: bytes)
        #expect(try XXHash64.hashFile(path: path) == bytes.withUnsafeBytes { XXHash64.hash($0) })
    }
}

@Suite struct FileIOTests {
    @Test func writerPadsAndReaderStreamsBack() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/w.bin"
        let writer = try FileWriter(path: path)
        try writer.write(integer: UInt32(0xDEAD_BEEF))
        try writer.pad(toMultipleOf: 64)
        let big = [UInt8](repeating: 3, count: (1 << 20) + 5)
        try writer.write(big)
        try writer.finish()
        #expect(writer.offset == 64 + big.count)

        let reader = try FileReader(path: path)
        #expect(reader.size == 64 + big.count)
        var head = [UInt8](repeating: 0, count: 64)
        try head.withUnsafeMutableBytes { try reader.readExactly(into: $0) }
        #expect(head[0..<4] == [0xEF, 0xBE, 0xAD, 0xDE])
        #expect(head[4...].allSatisfy { $0 == 0 })
        var rest = [UInt8](repeating: 0, count: big.count + 1)
        #expect(throws: MappedStorageError.self) {
            try rest.withUnsafeMutableBytes { try reader.readExactly(into: $0) }
        }
    }

    @Test func renameMovesDirectoryAndReportsFailure() throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.path + "/a", withIntermediateDirectories: false)
        try FileSystemOps.rename(dir.path + "/a", to: dir.path + "/b")
        #expect(FileManager.default.fileExists(atPath: dir.path + "/b"))
        #expect(throws: MappedStorageError.self) { try FileSystemOps.rename(dir.path + "/a", to: dir.path + "/c") }
        try FileSystemOps.syncDirectory(dir.path)
    }
}

import TestSupport
import Testing

@testable import VectorIndex

@Suite struct HNSWGraphTests {
    static let rows = Fixtures.clusteredRows(count: 300, dimension: 8, seed: 31)
    static let fixture = try! IndexFixture(
        rows: rows, metric: .ip, parameters: HNSWParameters(m: 6, efConstruction: 30))

    /// A graph over its own copy of the payload. The graph reads the bytes in place, so the copy lives
    /// as long as this object: keep it alive while the graph is used (AddressSanitizer found the
    /// copy freed before use when `open` returned the bare graph).
    final class OpenedGraph {
        let graph: HNSWGraph
        private let buffer: UnsafeMutableRawBufferPointer

        init(_ bytes: [UInt8], rowCount: Int) throws {
            buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
            buffer.copyBytes(from: bytes)
            do {
                graph = try HNSWGraph(
                    bytes: UnsafeRawBufferPointer(rebasing: buffer[0..<bytes.count]), rowCount: rowCount)
            } catch {
                buffer.deallocate()
                throw error
            }
        }

        deinit { buffer.deallocate() }
    }

    /// Opens a mutated copy of the payload.
    static func open(_ mutate: (inout [UInt8]) -> Void, rowCount: Int = rows.count) throws -> OpenedGraph {
        var bytes = fixture.payload
        mutate(&bytes)
        return try OpenedGraph(bytes, rowCount: rowCount)
    }

    static func store<T: FixedWidthInteger>(_ value: T, at offset: Int, in bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
    }

    static func field<T: FixedWidthInteger>(_ offset: Int, as type: T.Type) -> T {
        fixture.payload.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    @Test func headerIsPinnedAt128BytesAndSectionsAre64ByteAligned() throws {
        #expect(HNSWGraphLayout.headerSize == 128)
        #expect(Array(Self.fixture.payload.prefix(8)) == Array("RKHNSW".utf8) + [0, 0])
        for offset in [64, 72, 80, 88, 104] { #expect(Self.field(offset, as: UInt64.self) % 64 == 0) }
        #expect(Self.field(104, as: UInt64.self) == UInt64(Self.fixture.payload.count))
        let opened = try Self.open { _ in }
        defer { withExtendedLifetime(opened) {} }
        let graph = opened.graph
        #expect(graph.rowCount == Self.rows.count && graph.m == 6 && graph.metric == .ip)
        #expect(graph.innerProductSpace == .hybrid)
        #expect(graph.level(of: Int(graph.entryPoint)) == graph.maxLevel)
    }

    @Test func builtGraphRespectsDegreeBoundsAndHasNoSelfLoops() throws {
        let opened = try Self.open { _ in }
        defer { withExtendedLifetime(opened) {} }
        let graph = opened.graph
        for row in 0..<graph.rowCount {
            for level in 0...graph.level(of: row) {
                let neighbors = graph.neighbors(of: row, level: level)
                #expect(neighbors.count <= (level == 0 ? 12 : 6))
                #expect(!neighbors.contains(Int32(row)))
                #expect(Set(neighbors).count == neighbors.count)
            }
            #expect(!graph.neighbors(of: row, level: 0).isEmpty)
        }
    }

    @Test func rejectsBadMagic() {
        #expect(throws: VectorIndexError.badMagic) { try Self.open { $0[0] ^= 0xFF } }
    }

    @Test func rejectsUnknownVersion() {
        #expect(throws: VectorIndexError.unsupportedVersion(9)) {
            try Self.open { Self.store(UInt32(9), at: 8, in: &$0) }
        }
    }

    @Test func rejectsTruncatedPayloadAtEveryLength() {
        let size = Self.fixture.payload.count
        for length in [0, 1, 64, 127, 128, 129, size / 2, size - 64, size - 1] {
            #expect(throws: VectorIndexError.self) { try Self.open { $0.removeLast(size - length) } }
        }
    }

    @Test func rejectsRowCountMismatch() {
        #expect(throws: VectorIndexError.badHeaderField(name: "rowCount", value: 300, reason: "expected 301")) {
            try Self.open({ _ in }, rowCount: 301)
        }
    }

    @Test func rejectsNeighbourIdOutOfRange() {
        let level0 = Int(Self.field(64, as: UInt64.self))
        #expect(throws: VectorIndexError.badNeighbor(row: 0, level: 0, slot: 0, neighbor: 300)) {
            try Self.open { Self.store(Int32(300), at: level0 + 4, in: &$0) }
        }
        #expect(throws: VectorIndexError.badNeighbor(row: 0, level: 0, slot: 0, neighbor: -1)) {
            try Self.open { Self.store(Int32(-1), at: level0 + 4, in: &$0) }
        }
    }

    @Test func rejectsDegreeAboveBound() {
        let level0 = Int(Self.field(64, as: UInt64.self))
        let rowBytes = 4 * (1 + 12)
        #expect(throws: VectorIndexError.badDegree(row: 2, level: 0, degree: 13, maximum: 12)) {
            try Self.open { Self.store(Int32(13), at: level0 + 2 * rowBytes, in: &$0) }
        }
    }

    @Test func hybridLevel0ListsLeadWithTheirInnerProductPrefix() throws {
        let opened = try Self.open { _ in }
        defer { withExtendedLifetime(opened) {} }
        let graph = opened.graph
        #expect(Self.field(20, as: UInt32.self) & HNSWGraphLayout.flagNavigationPrefix != 0)
        var angularFilled = 0
        for row in 0..<graph.rowCount {
            let prefix = graph.navigationDegree(of: row)
            #expect(prefix >= 1 && prefix <= graph.neighbors(of: row, level: 0).count)
            if prefix < graph.neighbors(of: row, level: 0).count { angularFilled += 1 }
        }
        #expect(angularFilled > graph.rowCount / 2)
    }

    @Test func rejectsNavigationPrefixLongerThanTheList() throws {
        let level0 = Int(Self.field(64, as: UInt64.self))
        let rowBytes = 4 * (1 + 12)
        let word = Self.field(level0 + 3 * rowBytes, as: UInt32.self)
        let degree = Int(word & 0xFFFF)
        #expect(throws: VectorIndexError.badDegree(row: 3, level: 0, degree: degree + 1, maximum: degree)) {
            try Self.open { Self.store(UInt32(degree + 1) << 16 | UInt32(degree), at: level0 + 3 * rowBytes, in: &$0) }
        }
    }

    /// Every hybrid row has a non-empty prefix, so its degree word read as a plain count exceeds the bound.
    @Test func rejectsPackedDegreeWordsWhenThePrefixFlagIsCleared() throws {
        let flags = Self.field(20, as: UInt32.self) & ~HNSWGraphLayout.flagNavigationPrefix
        #expect(throws: VectorIndexError.self) {
            try Self.open { Self.store(flags, at: 20, in: &$0) }
        }
    }

    @Test func rejectsLevelAboveMaxLevel() {
        let levels = Int(Self.field(72, as: UInt64.self))
        let maxLevel = Int(Self.field(40, as: UInt32.self))
        #expect(throws: VectorIndexError.self) { try Self.open { $0[levels + 5] = UInt8(maxLevel + 1) } }
    }

    @Test func rejectsEntryPointOutOfRange() {
        #expect(throws: VectorIndexError.self) { try Self.open { Self.store(Int32(300), at: 44, in: &$0) } }
    }

    /// Seeded random byte flips anywhere: the graph either opens (a flip in an unused slot or padding) and then
    /// every list it exposes is in bounds, or it throws — never a crash.
    @Test func randomByteFlipsAreRejectedOrHarmless() throws {
        var rng = SeededGenerator(seed: 77)
        for _ in 0..<300 {
            let offset = Int(rng.next() % UInt64(Self.fixture.payload.count))
            let bit = UInt8(1) << UInt8(rng.next() % 8)
            guard let opened = try? Self.open({ $0[offset] ^= bit }) else { continue }
            defer { withExtendedLifetime(opened) {} }
            let graph = opened.graph
            for row in 0..<graph.rowCount {
                for level in 0...graph.level(of: row) {
                    #expect(graph.neighbors(of: row, level: level).allSatisfy { $0 >= 0 && $0 < 300 })
                }
            }
        }
    }
}

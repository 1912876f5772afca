import MappedStorage
import VectorIndex

/// Per-value indexes for filtered retrieval, read in place: a posting list per brand (categories have theirs in
/// `PopularityLists`), and for every category and brand with at least the build's `quantisedMinItems` items a
/// ``SubsetIndex``: its rows, their quantised (`i8`) copy and, for values with at least `subgraphMinItems` items, an
/// HNSW graph over them (docs/INDEX.md "Attribute subgraphs").
///
/// Layout (file kind `filterIndex`; parameters: row count, brand count, value-index count):
/// 0. `brandStarts` u64 × (brands + 1) — brand b's rows are entries `starts[b] ..< starts[b+1]` of section 1
/// 1. `brandRows` u32 × branded — per brand, its rows ascending
/// 2. `directory` 40 bytes × value indexes, ascending by (attribute, value): attribute u32 (0 category, 1 brand),
///    value u32 (category or brand id), rowsStart u64 (entry of section 3), rowCount u64, graphOffset u64 (byte
///    offset in section 4, a multiple of 64), graphBytes u64 (0: no graph)
/// 3. `valueRows` i32 × Σ rowCount — each value's rows ascending: local id i is row `rows[i]`
/// 4. `graphs` — the HNSW payloads (`HNSWGraphLayout`) of the values that have one, each at its offset, zero gaps
/// 5. `blocks` — each value's items as `i8` rows (`VectorCodec`), contiguous in local order: value index i's local
///    id j is row `rowsStart + j` of this section, `VectorCodec.rowStride(dimension, .i8)` bytes a row
///
/// `open` checks the directory (order, ranges, canonical offsets) and `brandStarts` in O(brands + value indexes);
/// `Snapshot.verifyStructure()` checks every list and block against the attribute columns and vectors;
/// `Snapshot.loadValueIndexes()` validates each graph.
public struct FilterIndex: @unchecked Sendable {
    /// Which attribute a value index's value belongs to.
    public enum Attribute: UInt32, Sendable, CustomStringConvertible {
        case category = 0
        case brand = 1

        public var description: String { self == .category ? "category" : "brand" }
    }

    /// One value index's place in the file.
    public struct Entry: Sendable, Equatable {
        public let attribute: Attribute
        public let value: Int
        let rowsStart: Int
        public let rowCount: Int
        let graphOffset: Int
        let graphBytes: Int

        /// Whether the value has an HNSW graph (else it is always scanned).
        public var hasGraph: Bool { graphBytes > 0 }
    }

    static let entryBytes = 40

    /// The value indexes' directory, ascending by (attribute, value).
    public let entries: [Entry]
    private let brandStarts: Column<UInt64>
    private let brandRows: Column<UInt32>
    private let valueRows: Column<Int32>
    private let graphs: ByteView
    private let blocks: ByteView
    private let dimension: Int
    private let name: String

    /// Number of brands.
    public var brandCount: Int { brandStarts.count - 1 }

    init(_ file: SectionFile, rows: Int, brands: Int, categories: Int, dimension: Int) throws(SnapshotError) {
        name = file.name
        self.dimension = dimension
        func corrupt(_ offset: Int, _ reason: String) -> SnapshotError {
            .corrupt(file: file.name, offset: offset, reason: reason)
        }
        guard file.parameters[0] == UInt64(rows), file.parameters[1] == UInt64(brands) else {
            throw corrupt(32, "row/brand counts do not match the attributes")
        }
        let indexes = try file.parameter(2, "value index count")
        let branded = file.section(1).count / 4
        try file.expectSection(0, bytes: (brands + 1) * 8, "brand start")
        try file.expectSection(1, bytes: branded * 4, "brand posting list")
        try file.expectSection(2, bytes: checkedProduct(indexes, Self.entryBytes), "value index directory")
        brandStarts = try mappingErrors { try file.section(0).column(UInt64.self, offset: 0, count: brands + 1) }
        brandRows = try mappingErrors { try file.section(1).column(UInt32.self, offset: 0, count: branded) }
        var previous: UInt64 = 0
        for index in 0...brands {
            let start = brandStarts[index]
            guard start >= previous, start <= UInt64(branded), index > 0 || start == 0 else {
                throw corrupt(
                    file.section(0).baseOffset + 8 * index,
                    "brand start \(index) = \(start) is out of order or past \(branded) entries")
            }
            previous = start
        }
        guard previous == UInt64(branded) else {
            throw corrupt(file.section(0).baseOffset + 8 * brands, "brand starts end at \(previous), not \(branded)")
        }

        let directory = file.section(2)
        let graphBytesTotal = file.section(4).count
        var entries: [Entry] = []
        var rowsEnd = 0
        var graphEnd = 0
        do {
            for index in 0..<indexes {
                let at = index * Self.entryBytes
                let position = directory.baseOffset + at
                let rawAttribute = try directory.load(UInt32.self, at: at)
                let value = Int(try directory.load(UInt32.self, at: at + 4))
                let words = try (0..<4).map { (i) throws(MappedStorageError) in
                    try directory.load(UInt64.self, at: at + 8 + 8 * i)
                }
                guard let attribute = Attribute(rawValue: rawAttribute) else {
                    throw corrupt(position, "value index \(index): unknown attribute \(rawAttribute)")
                }
                guard value < (attribute == .category ? categories : brands) else {
                    throw corrupt(
                        position + 4, "value index \(index): \(attribute) id \(value) is not in the dictionary")
                }
                if let last = entries.last,
                    (last.attribute.rawValue, last.value) >= (attribute.rawValue, value)
                {
                    throw corrupt(position, "value index \(index): directory not ascending by (attribute, value)")
                }
                // Canonical layout: rows follow each other, graphs start at the next 64-byte boundary, so any
                // other offset is corruption.
                guard words[0] == UInt64(rowsEnd), words[1] > 0, words[1] <= UInt64(rows) else {
                    throw corrupt(position + 8, "value index \(index): rows \(words[0]) + \(words[1]) not canonical")
                }
                let expectedGraph = (graphEnd + 63) & ~63
                guard words[2] == UInt64(expectedGraph),
                    words[3] <= UInt64(graphBytesTotal - min(expectedGraph, graphBytesTotal))
                else {
                    throw corrupt(
                        position + 24, "value index \(index): graph bytes \(words[2]) + \(words[3]) out of place")
                }
                let entry = Entry(
                    attribute: attribute, value: value, rowsStart: rowsEnd, rowCount: Int(words[1]),
                    graphOffset: expectedGraph, graphBytes: Int(words[3]))
                entries.append(entry)
                rowsEnd += entry.rowCount
                graphEnd = expectedGraph + entry.graphBytes
            }
        } catch let error as SnapshotError {
            throw error
        } catch let error as MappedStorageError {
            throw .io(error)
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
        try file.expectSection(3, bytes: rowsEnd * 4, "value rows")
        guard graphEnd == graphBytesTotal else {
            throw corrupt(
                64 + 16 * 4 + 8, "graphs section is \(graphBytesTotal) bytes, the directory ends at \(graphEnd)")
        }
        try file.expectSection(
            5, bytes: checkedProduct(rowsEnd, VectorCodec.rowStride(dimension: dimension, type: .i8)),
            "quantised blocks")
        valueRows = try mappingErrors { try file.section(3).column(Int32.self, offset: 0, count: rowsEnd) }
        graphs = file.section(4)
        blocks = file.section(5)
        self.entries = entries
    }

    /// Number of items of `brand`. O(1).
    public func itemCount(inBrand brand: Int) -> Int { brandRange(brand).count }

    /// Rows of `brand` in ascending order (a posting list). O(1); the buffer is in place.
    public func rows(inBrand brand: Int) -> UnsafeBufferPointer<UInt32> {
        UnsafeBufferPointer(rebasing: brandRows.buffer[brandRange(brand)])
    }

    /// The rows of a value index, ascending. O(1); in place.
    public func rows(of entry: Entry) -> UnsafeBufferPointer<Int32> {
        UnsafeBufferPointer(rebasing: valueRows.buffer[entry.rowsStart..<(entry.rowsStart + entry.rowCount)])
    }

    /// Validates and returns the value index of `entry` over a matrix of `matrixRows` rows (O(rows × M) with a
    /// graph, O(rows) without).
    /// - Throws: `.graph` naming the value when its graph payload is malformed or does not match.
    func valueIndex(_ entry: Entry, metric: Metric, matrixRows: Int) throws(SnapshotError) -> SubsetIndex {
        let what = "\(entry.attribute) \(entry.value) index"
        do {
            var graph: HNSWGraph?
            if entry.hasGraph {
                let bytes = try graphs.slice(offset: entry.graphOffset, count: entry.graphBytes).bytes
                let payload = try HNSWGraph(bytes: bytes, rowCount: entry.rowCount)
                guard payload.byteCount == entry.graphBytes else {
                    throw SnapshotError.graph(
                        file: name, reason: "\(what) graph uses \(payload.byteCount) of its \(entry.graphBytes) bytes")
                }
                guard payload.metric == metric else {
                    throw SnapshotError.graph(
                        file: name, reason: "\(what) metric \(payload.metric) ≠ manifest \(metric)")
                }
                graph = payload
            }
            return try SubsetIndex(
                rows: rows(of: entry), quantised: try block(of: entry), graph: graph, matrixRows: matrixRows)
        } catch let error as SnapshotError {
            throw error
        } catch {
            throw .graph(file: name, reason: "\(what): \(error)")
        }
    }

    /// The value's items as `i8` rows in local order (the quantised copy its searches scan). O(1); in place.
    func block(of entry: Entry) throws -> VectorMatrix {
        let stride = VectorCodec.rowStride(dimension: dimension, type: .i8)
        let bytes = try blocks.slice(offset: entry.rowsStart * stride, count: entry.rowCount * stride).bytes
        return try VectorMatrix(bytes: bytes, count: entry.rowCount, dimension: dimension, type: .i8)
    }

    private func brandRange(_ brand: Int) -> Range<Int> {
        precondition(brand >= 0 && brand < brandCount, "brand \(brand) out of range")
        return Int(brandStarts[brand])..<Int(brandStarts[brand + 1])
    }

    /// Checks every list against the attribute columns: each brand's posting list and each value index's rows are
    /// exactly the value's items, ascending, and its block is their vectors re-encoded. O(rows + Σ index rows × d).
    func verify(
        attributes: ItemAttributes, popularity: PopularityLists, vectors: VectorMatrix
    ) throws(SnapshotError) {
        func fail(_ reason: String) -> SnapshotError { .corrupt(file: name, offset: 0, reason: reason) }
        var branded = 0
        for row in 0..<attributes.count where attributes.brand[row] != ItemAttributes.none { branded += 1 }
        guard branded == brandRows.count else {
            throw fail("brand lists hold \(brandRows.count) rows, \(branded) items have a brand")
        }
        for brand in 0..<brandCount {
            let posting = rows(inBrand: brand)
            for index in 0..<posting.count {
                let row = posting[index]
                guard Int(row) < attributes.count, attributes.brand[Int(row)] == UInt32(brand) else {
                    throw fail("brand \(brand) posting entry \(index): row \(row) is not of the brand")
                }
                if index > 0, posting[index - 1] >= row { throw fail("brand \(brand) posting list not ascending") }
            }
        }
        for entry in entries {
            let column = entry.attribute == .category ? attributes.category : attributes.brand
            let expected =
                entry.attribute == .category
                ? popularity.itemCount(inCategory: entry.value) : itemCount(inBrand: entry.value)
            guard entry.rowCount == expected else {
                throw fail("\(entry.attribute) \(entry.value) index has \(entry.rowCount) rows, not \(expected)")
            }
            let list = rows(of: entry)
            for index in 0..<list.count {
                let row = list[index]
                guard row >= 0, Int(row) < attributes.count, column[Int(row)] == UInt32(entry.value) else {
                    throw fail("\(entry.attribute) \(entry.value) index row \(index) (\(row)) lacks the value")
                }
                if index > 0, list[index - 1] >= row {
                    throw fail("\(entry.attribute) \(entry.value) index rows not ascending")
                }
            }
            try verifyBlock(entry, rows: list, vectors: vectors)
        }
    }

    /// Checks that `entry`'s quantised block is exactly its items' rows re-encoded as `i8`.
    private func verifyBlock(
        _ entry: Entry, rows: UnsafeBufferPointer<Int32>, vectors: VectorMatrix
    ) throws(SnapshotError) {
        let block: VectorMatrix
        do { block = try self.block(of: entry) } catch { throw .corrupt(file: name, offset: 0, reason: "\(error)") }
        let stride = VectorCodec.rowStride(dimension: dimension, type: .i8)
        try QuantisedRows.verify(
            block, rows: rows, vectors: vectors, file: name, baseOffset: blocks.baseOffset + entry.rowsStart * stride,
            what: "\(entry.attribute) \(entry.value)")
    }
}

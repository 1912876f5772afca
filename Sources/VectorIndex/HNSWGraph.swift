/// A serialized HNSW graph read in place (layout in `HNSWGraphLayout`), e.g. from a snapshot's mapped graph file.
///
/// `init` validates the header, every section bound, every level, degree and neighbour id against the buffer size
/// and `rowCount` before anything points into the buffer, so a corrupted payload is rejected with a typed error and
/// a validated graph can be walked without further checks. Validation is O(rowCount × 2M) (≈ 30 ms per million rows).
/// The memory must outlive the graph and stay unmodified. Reading is thread-safe.
public struct HNSWGraph: @unchecked Sendable {
    @usableFromInline let layout: HNSWGraphLayout
    /// The metric the graph was built for.
    public let metric: Metric
    public let rowCount: Int
    /// Upper-level degree bound M (level 0 allows 2M).
    public let m: Int
    public let maxLevel: Int
    public let entryPoint: Int32
    /// The space an ip graph was built in (`nil` for other metrics).
    public let innerProductSpace: InnerProductGraphSpace?
    /// Total payload bytes used by the graph.
    public let byteCount: Int

    /// - Parameters:
    ///   - bytes: the graph payload (may be longer than the graph; the rest is ignored).
    ///   - rowCount: the number of vector rows the graph must cover.
    /// - Throws: `VectorIndexError` naming the field, row, level or slot that is wrong.
    public init(bytes: UnsafeRawBufferPointer, rowCount: Int) throws {
        let size = bytes.count
        guard size >= HNSWGraphLayout.headerSize, let base = bytes.baseAddress else {
            throw VectorIndexError.truncated(
                section: "HNSW graph header", neededBytes: HNSWGraphLayout.headerSize, availableBytes: size)
        }
        guard Int(bitPattern: base) % 4 == 0 else {
            throw VectorIndexError.invalidArgument(
                name: "graph address", value: Int(bitPattern: base), reason: "must be 4-byte aligned")
        }
        guard HNSWGraphLayout.magic.indices.allSatisfy({ bytes[$0] == HNSWGraphLayout.magic[$0] }) else {
            throw VectorIndexError.badMagic
        }
        let version = base.headerField(HNSWGraphLayout.Field.version, as: UInt32.self)
        guard version == HNSWGraphLayout.version else { throw VectorIndexError.unsupportedVersion(version) }
        func field(_ name: String, _ value: UInt64, _ valid: Bool, _ reason: String) throws -> Int {
            guard valid, value <= UInt64(Int.max) else {
                throw VectorIndexError.badHeaderField(name: name, value: Int(truncatingIfNeeded: value), reason: reason)
            }
            return Int(value)
        }
        let headerSize = base.headerField(HNSWGraphLayout.Field.headerSize, as: UInt32.self)
        _ = try field(
            "headerSize", UInt64(headerSize), Int(headerSize) == HNSWGraphLayout.headerSize,
            "must be \(HNSWGraphLayout.headerSize)")
        let metricCode = base.headerField(HNSWGraphLayout.Field.metric, as: UInt32.self)
        guard let metric = Metric(graphCode: metricCode) else {
            throw VectorIndexError.badHeaderField(name: "metric", value: Int(metricCode), reason: "unknown metric code")
        }
        let flags = base.headerField(HNSWGraphLayout.Field.flags, as: UInt32.self)
        _ = try field("flags", UInt64(flags), flags & ~HNSWGraphLayout.knownFlags == 0, "unknown flag bits")
        let storedRows = base.headerField(HNSWGraphLayout.Field.rowCount, as: UInt64.self)
        let rows = try field("rowCount", storedRows, storedRows == UInt64(max(rowCount, 0)), "expected \(rowCount)")
        let mRaw = base.headerField(HNSWGraphLayout.Field.m, as: UInt32.self)
        let m = try field("m", UInt64(mRaw), mRaw >= 2 && mRaw <= 256, "must be in 2...256")
        let degree0 = base.headerField(HNSWGraphLayout.Field.maxDegree0, as: UInt32.self)
        _ = try field("maxDegree0", UInt64(degree0), Int(degree0) == 2 * m, "must be 2m")
        let maxLevelRaw = base.headerField(HNSWGraphLayout.Field.maxLevel, as: UInt32.self)
        let maxLevel = try field(
            "maxLevel", UInt64(maxLevelRaw), Int(maxLevelRaw) <= HNSWGraphLayout.maximumLevel, "too large")
        let entry = base.headerField(HNSWGraphLayout.Field.entryPoint, as: Int32.self)
        guard rows == 0 ? entry == -1 : (entry >= 0 && Int(entry) < rows) else {
            throw VectorIndexError.badHeaderField(name: "entryPoint", value: Int(entry), reason: "out of range")
        }
        let upperWords = try field(
            "upperWordCount", base.headerField(HNSWGraphLayout.Field.upperWordCount, as: UInt64.self), true, "")
        guard upperWords <= size / 4 else {
            throw VectorIndexError.truncated(
                section: "HNSW upper levels", neededBytes: upperWords * 4, availableBytes: size)
        }
        var layout = HNSWGraphLayout(base: base, rowCount: rows, m: m, upperWordCount: upperWords)
        if flags & HNSWGraphLayout.flagNavigationPrefix != 0 { layout.navigationShift = 16 }
        for (name, offset, expected) in [
            ("level0Offset", HNSWGraphLayout.Field.level0Offset, layout.level0Offset),
            ("levelsOffset", HNSWGraphLayout.Field.levelsOffset, layout.levelsOffset),
            ("upperIndexOffset", HNSWGraphLayout.Field.upperIndexOffset, layout.upperIndexOffset),
            ("upperDataOffset", HNSWGraphLayout.Field.upperDataOffset, layout.upperDataOffset),
            ("totalSize", HNSWGraphLayout.Field.totalSize, layout.totalSize),
        ] {
            _ = try field(
                name, base.headerField(offset, as: UInt64.self),
                base.headerField(offset, as: UInt64.self) == UInt64(expected), "expected \(expected)")
        }
        guard layout.totalSize <= size else {
            throw VectorIndexError.truncated(section: "HNSW graph", neededBytes: layout.totalSize, availableBytes: size)
        }
        try Self.validateNodes(layout, maxLevel: maxLevel)
        if rows > 0 && layout.level(entry) != maxLevel {
            throw VectorIndexError.badHeaderField(
                name: "entryPoint", value: Int(entry), reason: "its level is not maxLevel \(maxLevel)")
        }
        self.layout = layout
        self.metric = metric
        self.rowCount = rows
        self.m = m
        self.maxLevel = maxLevel
        self.entryPoint = entry
        if metric != .ip {
            innerProductSpace = nil
        } else if flags & HNSWGraphLayout.flagExtraDimensionMIPS != 0 {
            innerProductSpace = .extraDimension
        } else {
            innerProductSpace = flags & HNSWGraphLayout.flagAngularLevel0 != 0 ? .hybrid : .plain
        }
        self.byteCount = layout.totalSize
    }

    /// `packed`: the degree word holds the navigation prefix in its high 16 bits (level 0 with flag bit 2).
    private static func validateList(
        _ list: UnsafePointer<Int32>, row: Int, level: Int, maximum: Int, rowCount: Int, packed: Bool = false
    ) throws {
        let degree = packed ? HNSWGraphLayout.fullDegree(list) : Int(list[0])
        guard degree >= 0 && degree <= maximum else {
            throw VectorIndexError.badDegree(row: row, level: level, degree: degree, maximum: maximum)
        }
        let prefix = Int(UInt32(bitPattern: list[0]) >> 16)
        guard !packed || prefix <= degree else {
            throw VectorIndexError.badDegree(row: row, level: level, degree: prefix, maximum: degree)
        }
        for slot in 0..<degree {
            let neighbor = list[1 + slot]
            guard neighbor >= 0 && Int(neighbor) < rowCount else {
                throw VectorIndexError.badNeighbor(row: row, level: level, slot: slot, neighbor: neighbor)
            }
        }
    }

    private static func validateNodes(_ layout: HNSWGraphLayout, maxLevel: Int) throws {
        let rows = layout.rowCount
        for row in 0..<rows {
            let r = Int32(row)
            try validateList(
                layout.level0List(r), row: row, level: 0, maximum: layout.maxDegree0, rowCount: rows,
                packed: layout.navigationShift != 0)
            let level = layout.level(r)
            guard level <= maxLevel else { throw VectorIndexError.badLevel(row: row, level: level, maxLevel: maxLevel) }
            guard level > 0 else { continue }
            let first = Int(layout.base.load(fromByteOffset: layout.upperIndexOffset + 4 * row, as: UInt32.self))
            guard first + level * (1 + layout.m) <= layout.upperWordCount else {
                throw VectorIndexError.badHeaderField(
                    name: "upperIndex[\(row)]", value: first, reason: "lists run past upperWordCount")
            }
            for l in 1...level {
                try validateList(layout.upperList(r, level: l), row: row, level: l, maximum: layout.m, rowCount: rows)
            }
        }
    }

    /// The neighbours of `row` at `level` (copied; for tools such as `rankctl verify` and tests, not the hot path).
    public func neighbors(of row: Int, level: Int) -> [Int32] {
        precondition(row >= 0 && row < rowCount && level >= 0 && level <= self.level(of: row), "no such list")
        let list = layout.list(Int32(row), level: level)
        return (0..<HNSWGraphLayout.fullDegree(list)).map { list[1 + $0] }
    }

    /// How many of `row`'s level-0 neighbours (at the front of `neighbors(of:level:)`) an unfiltered walk follows:
    /// the inner-product prefix of a hybrid graph, else all of them.
    public func navigationDegree(of row: Int) -> Int {
        precondition(row >= 0 && row < rowCount, "row out of range")
        return layout.navigationDegree(layout.level0List(Int32(row)))
    }

    /// The top level of `row`.
    public func level(of row: Int) -> Int {
        precondition(row >= 0 && row < rowCount, "row out of range")
        return layout.level(Int32(row))
    }
}

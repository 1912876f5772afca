/// Byte layout of a serialized HNSW graph payload (all little-endian; every section starts 64-byte aligned).
///
/// ```
/// Header, 128 bytes:
///   0  magic            8 bytes "RKHNSW\0\0"
///   8  version          UInt32 (1)
///  12  headerSize       UInt32 (128)
///  16  metric           UInt32 (0 ip, 1 cosine, 2 l2)
///  20  flags            UInt32 (bit 0: ip graph built in the extra-dimension MIPS space;
///                               bit 1: ip graph whose level 0 mixes inner-product and angular neighbours;
///                               bit 2: level-0 degree words are packed, see below)
///  24  rowCount         UInt64
///  32  m                UInt32 (upper-level degree bound)
///  36  maxDegree0       UInt32 (level-0 degree bound, 2m)
///  40  maxLevel         UInt32
///  44  entryPoint       Int32  (-1 when rowCount == 0)
///  48  efConstruction   UInt32 (informational)
///  52  reserved         UInt32 (0)
///  56  seed             UInt64 (informational)
///  64  level0Offset     UInt64  rowCount × (1 + maxDegree0) Int32: [degree, neighbours…, unused slots = 0]
///  72  levelsOffset     UInt64  rowCount × UInt8: each row's top level
///  80  upperIndexOffset UInt64  rowCount × UInt32: first word of the row's upper lists in the upper section
///  88  upperDataOffset  UInt64  upperWordCount × Int32: per row with level L > 0, L lists of (1 + m) words
///  96  upperWordCount   UInt64
/// 104  totalSize        UInt64  (payload length)
/// 112  reserved         16 bytes (0)
/// ```
///
/// Level-0 degree word: without flag bit 2 it is the neighbour count. With bit 2 (set with bit 1 by the hybrid ip
/// build) it packs two counts: bits 0–15 = all neighbours, bits 16–31 = how many of them, at the front of the list,
/// are the row's inner-product neighbours (the *navigation prefix*). Unfiltered walks follow only the prefix; walks
/// with a filter follow the whole list. Upper-level degree words are always plain counts.
@usableFromInline
struct HNSWGraphLayout {
    static let magic: [UInt8] = Array("RKHNSW".utf8) + [0, 0]
    static let version: UInt32 = 1
    static let headerSize = 128
    static let maximumLevel = 30
    static let flagExtraDimensionMIPS: UInt32 = 1
    static let flagAngularLevel0: UInt32 = 2
    static let flagNavigationPrefix: UInt32 = 4
    static let knownFlags = flagExtraDimensionMIPS | flagAngularLevel0 | flagNavigationPrefix

    /// Byte offsets of the header fields (the table above), named once for the writer and the
    /// validating reader.
    enum Field {
        static let version = 8
        static let headerSize = 12
        static let metric = 16
        static let flags = 20
        static let rowCount = 24
        static let m = 32
        static let maxDegree0 = 36
        static let maxLevel = 40
        static let entryPoint = 44
        static let efConstruction = 48
        static let seed = 56
        static let level0Offset = 64
        static let levelsOffset = 72
        static let upperIndexOffset = 80
        static let upperDataOffset = 88
        static let upperWordCount = 96
        static let totalSize = 104
    }

    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let rowCount: Int
    @usableFromInline let m: Int
    @usableFromInline let maxDegree0: Int
    @usableFromInline let level0Offset: Int
    @usableFromInline let levelsOffset: Int
    @usableFromInline let upperIndexOffset: Int
    @usableFromInline let upperDataOffset: Int
    let upperWordCount: Int
    let totalSize: Int
    /// 16 when level-0 degree words carry a navigation prefix (flag bit 2), else 0: `navigationDegree` shifts by it.
    @usableFromInline var navigationShift: UInt32 = 0

    /// Words per level-0 row: the degree then `maxDegree0` slots.
    @inlinable var level0Words: Int { 1 + maxDegree0 }

    /// Computes section offsets for a graph of `rowCount` rows whose upper lists take `upperWordCount` words.
    init(base: UnsafeRawPointer, rowCount: Int, m: Int, upperWordCount: Int) {
        func align(_ x: Int) -> Int { (x + 63) & ~63 }
        self.base = base
        self.rowCount = rowCount
        self.m = m
        self.maxDegree0 = 2 * m
        level0Offset = Self.headerSize
        levelsOffset = align(level0Offset + rowCount * (1 + 2 * m) * 4)
        upperIndexOffset = align(levelsOffset + rowCount)
        upperDataOffset = align(upperIndexOffset + rowCount * 4)
        self.upperWordCount = upperWordCount
        totalSize = align(upperDataOffset + upperWordCount * 4)
    }

    /// Neighbours in the list at `list` (any level): the low 16 bits of the degree word.
    @inlinable @inline(__always)
    static func fullDegree(_ list: UnsafePointer<Int32>) -> Int { Int(UInt32(bitPattern: list[0]) & 0xFFFF) }

    /// The level-0 navigation prefix of the list at `list` (all of it when the graph has no prefix).
    @inlinable @inline(__always)
    func navigationDegree(_ list: UnsafePointer<Int32>) -> Int {
        Int((UInt32(bitPattern: list[0]) >> navigationShift) & 0xFFFF)
    }

    /// The level-0 list of `row`: pointer to its degree word, neighbours follow.
    @inlinable @inline(__always)
    func level0List(_ row: Int32) -> UnsafePointer<Int32> {
        (base + level0Offset + Int(row) * level0Words * 4).assumingMemoryBound(to: Int32.self)
    }

    @inlinable @inline(__always)
    func level(_ row: Int32) -> Int {
        Int(base.load(fromByteOffset: levelsOffset + Int(row), as: UInt8.self))
    }

    /// The list of `row` at `level` ≥ 1: pointer to its degree word, neighbours follow. Precondition: level ≤ row's.
    @inlinable @inline(__always)
    func upperList(_ row: Int32, level: Int) -> UnsafePointer<Int32> {
        let first = Int(base.load(fromByteOffset: upperIndexOffset + 4 * Int(row), as: UInt32.self))
        let word = first + (level - 1) * (1 + m)
        return (base + upperDataOffset + 4 * word).assumingMemoryBound(to: Int32.self)
    }

    /// The list of `row` at any level: pointer to the degree word.
    @inlinable @inline(__always)
    func list(_ row: Int32, level: Int) -> UnsafePointer<Int32> {
        level == 0 ? level0List(row) : upperList(row, level: level)
    }
}

/// Little-endian field access for the header (the only multi-byte fields read with explicit offsets).
extension UnsafeRawPointer {
    func headerField<T: FixedWidthInteger>(_ offset: Int, as type: T.Type) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

extension UnsafeMutableRawPointer {
    func storeHeaderField<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }
}

extension Metric {
    var graphCode: UInt32 {
        switch self {
        case .ip: return 0
        case .cosine: return 1
        case .l2: return 2
        }
    }

    init?(graphCode: UInt32) {
        switch graphCode {
        case 0: self = .ip
        case 1: self = .cosine
        case 2: self = .l2
        default: return nil
        }
    }
}

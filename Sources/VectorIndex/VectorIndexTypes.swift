/// How the elements of a stored vector row are encoded. See `VectorCodec` for the byte layout of each.
public enum VectorElementType: String, Sendable, Codable, CaseIterable {
    /// IEEE-754 binary32, little-endian.
    case f32
    /// IEEE-754 binary16, little-endian.
    case f16
    /// Signed 8-bit with one Float32 scale per row (symmetric, per-row max-abs quantisation).
    case i8
}

/// The similarity a search ranks by. Scores are always "higher is better":
/// `ip` is the inner product, `cosine` the cosine similarity, `l2` the *negated* squared Euclidean distance.
public enum Metric: String, Sendable, Codable, CaseIterable {
    case ip, cosine, l2
}

/// One search hit: the item's row in the vector matrix and its score under the index metric
/// (higher is better for every metric; `l2` scores are negated squared distances).
public struct SearchResult: Sendable, Equatable, Hashable {
    public var row: Int32
    public var score: Float

    public init(row: Int32, score: Float) {
        self.row = row
        self.score = score
    }
}

/// A predicate over item rows that decides which rows may be returned by a search.
///
/// Rows that fail still guide the graph walk; they are never returned. VectorIndex knows nothing about what a row
/// means (category, price, stock): the engine adapts its attribute columns to this protocol.
/// `accepts` is called on the searching thread, possibly millions of times per exact scan: keep it cheap and free of
/// allocation.
public protocol RowFilter {
    func accepts(_ row: Int32) -> Bool
    /// Writes the rows of `rows` that pass, in order, to `output` (room for `rows.count`) and returns how many.
    /// An exact scan over all rows calls this once per block instead of `accepts` once per row: for a type-erased
    /// filter that is one dynamic call per block, and the loop runs specialised for the filter's own type.
    func acceptedRows(_ rows: Range<Int32>, into output: UnsafeMutablePointer<Int32>) -> Int
    /// Writes `first + i` for every `list[i]` that passes, in order, to `output` (room for `list.count`) and returns
    /// how many: the same one-call-per-block batching for a scan over a row list (a posting list, a subset's rows).
    func acceptedPositions(
        in list: UnsafeBufferPointer<Int32>, first: Int32, into output: UnsafeMutablePointer<Int32>
    ) -> Int
}

extension RowFilter {
    @inlinable
    public func acceptedRows(_ rows: Range<Int32>, into output: UnsafeMutablePointer<Int32>) -> Int {
        var count = 0
        for row in rows {
            output[count] = row
            count &+= accepts(row) ? 1 : 0  // no branch on the filter's answer
        }
        return count
    }

    @inlinable
    public func acceptedPositions(
        in list: UnsafeBufferPointer<Int32>, first: Int32, into output: UnsafeMutablePointer<Int32>
    ) -> Int {
        var count = 0
        for (index, row) in list.enumerated() {
            output[count] = first &+ Int32(truncatingIfNeeded: index)
            count &+= accepts(row) ? 1 : 0  // no branch on the filter's answer
        }
        return count
    }
}

/// The filter that accepts every row (an unfiltered search). Specialised away by the generic search.
public struct AcceptAllRows: RowFilter, Sendable {
    public init() {}
    @inlinable public func accepts(_ row: Int32) -> Bool { true }
}

/// The filter that rejects only the rows set in a bitset (items withdrawn from a catalogue after its index was
/// built) and so is nearly unfiltered: ``HNSWIndex`` walks it like an unfiltered search (the inner-product prefix
/// of each level-0 list, see `navigationOnly`), only skipping the rejected rows as results, and falls back to an
/// exact scan when fewer than k remain reachable. Two words, so it never boxes when type-erased.
public struct ExcludedRowSet: RowFilter {
    /// Bit r set: row r is rejected. Rows beyond the bitset pass.
    public let bits: UnsafeBufferPointer<UInt64>

    public init(bits: UnsafeBufferPointer<UInt64>) { self.bits = bits }

    @inlinable public func accepts(_ row: Int32) -> Bool {
        let word = Int(row) >> 6
        return word >= bits.count || bits[word] & (1 << UInt64(row & 63)) == 0
    }
}

/// A caller's filter behind one concrete type, so the search loops are compiled once per kernel in this module.
/// A filter of at most three words (a class reference, a buffer pointer and count) sits inline in the existential;
/// a larger struct is boxed, costing one heap allocation per search — keep engine filters small.
struct AnyRowFilter: RowFilter {
    let base: any RowFilter

    init(_ base: some RowFilter) { self.base = base }

    func accepts(_ row: Int32) -> Bool { base.accepts(row) }

    func acceptedRows(_ rows: Range<Int32>, into output: UnsafeMutablePointer<Int32>) -> Int {
        base.acceptedRows(rows, into: output)
    }

    func acceptedPositions(
        in list: UnsafeBufferPointer<Int32>, first: Int32, into output: UnsafeMutablePointer<Int32>
    ) -> Int {
        base.acceptedPositions(in: list, first: first, into: output)
    }
}

/// Errors for malformed input: bad buffers, malformed or corrupted graph bytes, mismatched queries.
/// Each case names the field, row or offset at fault.
public enum VectorIndexError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A matrix or graph parameter is out of its allowed range.
    case invalidArgument(name: String, value: Int, reason: String)
    /// A buffer is shorter than its declared contents.
    case truncated(section: String, neededBytes: Int, availableBytes: Int)
    /// The graph payload does not start with the HNSW magic.
    case badMagic
    /// The graph payload has a format version this build does not read.
    case unsupportedVersion(UInt32)
    /// A header field is inconsistent with the buffer or with the caller's expectations.
    case badHeaderField(name: String, value: Int, reason: String)
    /// A node's level exceeds the graph's maximum level.
    case badLevel(row: Int, level: Int, maxLevel: Int)
    /// A neighbour list is longer than the level allows.
    case badDegree(row: Int, level: Int, degree: Int, maximum: Int)
    /// A neighbour id is outside `0..<rowCount`.
    case badNeighbor(row: Int, level: Int, slot: Int, neighbor: Int32)
    /// The query has the wrong number of dimensions.
    case queryDimensionMismatch(expected: Int, actual: Int)
    /// The graph was built for a different row count or metric than the vectors it is paired with.
    case graphMismatch(reason: String)

    public var description: String {
        switch self {
        case .invalidArgument(let name, let value, let reason):
            return "invalid \(name) \(value): \(reason)"
        case .truncated(let section, let needed, let available):
            return "\(section) truncated: needs \(needed) bytes, buffer has \(available)"
        case .badMagic:
            return "HNSW graph: bad magic (not an HNSW graph payload)"
        case .unsupportedVersion(let version):
            return "HNSW graph: unsupported format version \(version)"
        case .badHeaderField(let name, let value, let reason):
            return "HNSW graph header field \(name) = \(value): \(reason)"
        case .badLevel(let row, let level, let maxLevel):
            return "HNSW graph row \(row): level \(level) exceeds max level \(maxLevel)"
        case .badDegree(let row, let level, let degree, let maximum):
            return "HNSW graph row \(row) level \(level): degree \(degree) exceeds \(maximum)"
        case .badNeighbor(let row, let level, let slot, let neighbor):
            return "HNSW graph row \(row) level \(level) slot \(slot): neighbour id \(neighbor) out of range"
        case .queryDimensionMismatch(let expected, let actual):
            return "query has \(actual) dimensions, index has \(expected)"
        case .graphMismatch(let reason):
            return "HNSW graph does not match its vectors: \(reason)"
        }
    }
}

/// A non-owning view over `count` contiguous encoded rows of `dimension` elements (layout in `VectorCodec`).
///
/// Whoever creates it guarantees the memory outlives it and is not mutated while it is in use (a read-only mapping).
/// Reading is thread-safe.
public struct VectorMatrix: @unchecked Sendable {
    /// The rows, `count * rowStride` bytes (the buffer may be longer; the rest is ignored).
    public let bytes: UnsafeRawBufferPointer
    public let count: Int
    public let dimension: Int
    public let elementType: VectorElementType
    /// Bytes from one row to the next: `VectorCodec.rowStride(dimension:type:)`.
    public let rowStride: Int

    /// - Throws: `VectorIndexError.invalidArgument` for a non-positive dimension or negative count,
    ///   `.truncated` when `bytes` is shorter than `count` rows.
    public init(bytes: UnsafeRawBufferPointer, count: Int, dimension: Int, type: VectorElementType) throws {
        guard dimension > 0, dimension <= 65_536 else {
            throw VectorIndexError.invalidArgument(name: "dimension", value: dimension, reason: "must be in 1...65536")
        }
        guard count >= 0, count < Int(Int32.max) else {
            throw VectorIndexError.invalidArgument(name: "count", value: count, reason: "must be in 0..<Int32.max")
        }
        let stride = VectorCodec.rowStride(dimension: dimension, type: type)
        let needed = stride * count
        guard bytes.count >= needed, count == 0 || bytes.baseAddress != nil else {
            throw VectorIndexError.truncated(section: "vector matrix", neededBytes: needed, availableBytes: bytes.count)
        }
        self.bytes = bytes
        self.count = count
        self.dimension = dimension
        self.elementType = type
        self.rowStride = stride
    }

    /// The encoded bytes of row `row`. Precondition: `0 <= row < count`.
    @inlinable
    public func rowBytes(_ row: Int) -> UnsafeRawBufferPointer {
        precondition(row >= 0 && row < count, "row out of range")
        return UnsafeRawBufferPointer(rebasing: bytes[(row * rowStride)..<((row + 1) * rowStride)])
    }

    /// Decodes row `row` into `destination` (at least `dimension` floats).
    public func decodeRow(_ row: Int, into destination: UnsafeMutableBufferPointer<Float>) {
        VectorCodec.decode(rowBytes(row), as: elementType, dimension: dimension, into: destination)
    }
}

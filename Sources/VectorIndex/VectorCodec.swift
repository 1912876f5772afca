/// Encodes and decodes one stored vector row.
///
/// Row layouts (little-endian; every row of a matrix has the same stride, rows are contiguous):
/// - `f32`: `dimension` × Float32. Stride `4 * dimension`.
/// - `f16`: `dimension` × Float16, zero-padded to a multiple of 4 bytes. Stride `roundUp(2 * dimension, 4)`.
/// - `i8`: one Float32 `scale`, then `dimension` × Int8 `q[i]`, zero-padded to a multiple of 4 bytes.
///   Stride `roundUp(4 + dimension, 4)`. The value is `scale * q[i]`; `scale = maxAbs / 127`, `q[i] =
///   round(x[i] / scale)` clamped to -127...127 (symmetric, so -128 is never written). An all-zero row has scale 0.
///   Per-row scale keeps relative error ≈ 0.4% of the row's largest element, independent of the row's norm, which
///   matters for matrix-factorisation embeddings whose norms vary by 10× or more.
public enum VectorCodec {
    /// The byte stride of one row. Always a multiple of 4, so Float32 fields stay 4-byte aligned.
    public static func rowStride(dimension: Int, type: VectorElementType) -> Int {
        switch type {
        case .f32: return 4 * dimension
        case .f16: return (2 * dimension + 3) & ~3
        case .i8: return (4 + dimension + 3) & ~3
        }
    }

    /// Encodes one row into `destination` (exactly `rowStride` bytes; padding bytes are zeroed).
    /// The caller rejects NaN and infinities first.
    public static func encode(
        _ row: UnsafeBufferPointer<Float>, as type: VectorElementType, into destination: UnsafeMutableRawBufferPointer
    ) {
        let dimension = row.count
        precondition(destination.count == rowStride(dimension: dimension, type: type), "destination is not one row")
        guard let base = destination.baseAddress else { return }
        switch type {
        case .f32:
            for i in 0..<dimension {
                base.storeBytes(of: row[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
            }
        case .f16:
            destination.initializeMemory(as: UInt8.self, repeating: 0)
            for i in 0..<dimension {
                base.storeBytes(of: Float16(row[i]).bitPattern.littleEndian, toByteOffset: 2 * i, as: UInt16.self)
            }
        case .i8:
            destination.initializeMemory(as: UInt8.self, repeating: 0)
            var maxAbs: Float = 0
            for x in row { maxAbs = max(maxAbs, abs(x)) }
            let scale = maxAbs / 127
            base.storeBytes(of: scale.bitPattern.littleEndian, toByteOffset: 0, as: UInt32.self)
            guard scale > 0 else { return }
            for i in 0..<dimension {
                let q = max(-127, min(127, (row[i] / scale).rounded()))
                base.storeBytes(of: Int8(q), toByteOffset: 4 + i, as: Int8.self)
            }
        }
    }

    /// Decodes one row (`source` must hold at least `rowStride` bytes) into `dimension` floats.
    public static func decode(
        _ source: UnsafeRawBufferPointer, as type: VectorElementType, dimension: Int,
        into destination: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(source.count >= rowStride(dimension: dimension, type: type), "source is shorter than one row")
        precondition(destination.count >= dimension, "destination is shorter than the dimension")
        guard let base = source.baseAddress else { return }
        switch type {
        case .f32:
            for i in 0..<dimension { destination[i] = F32Elements.load1(base, i) }
        case .f16:
            for i in 0..<dimension { destination[i] = F16Elements.load1(base, i) }
        case .i8:
            let scale = I8Elements.scale(base)
            for i in 0..<dimension { destination[i] = scale * I8Elements.load1(base, i) }
        }
    }
}

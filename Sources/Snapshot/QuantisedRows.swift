import VectorIndex

/// The check every quantised copy of the item vectors gets before it may serve: a copy that drifted from the
/// vectors would rank silently wrong.
enum QuantisedRows {
    /// Checks that row `i` of `block` is exactly item row `rows[i]` of `vectors` re-encoded as `i8`.
    /// O(rows × dimension).
    /// - Parameters:
    ///   - baseOffset: the file offset of the block's first row, for the error.
    ///   - what: names the block in the error ("category 3", "partitions").
    static func verify(
        _ block: VectorMatrix, rows: UnsafeBufferPointer<Int32>, vectors: VectorMatrix, file: String,
        baseOffset: Int, what: String
    ) throws(SnapshotError) {
        let dimension = block.dimension
        guard vectors.dimension == dimension else {
            throw .corrupt(
                file: file, offset: 0,
                reason: "\(what) rows are for dimension \(dimension), items have \(vectors.dimension)")
        }
        let stride = VectorCodec.rowStride(dimension: dimension, type: .i8)
        var decoded = [Float](repeating: 0, count: dimension)
        var encoded = [UInt8](repeating: 0, count: stride)
        for node in 0..<rows.count {
            decoded.withUnsafeMutableBufferPointer { vectors.decodeRow(Int(rows[node]), into: $0) }
            decoded.withUnsafeBufferPointer { row in
                encoded.withUnsafeMutableBytes { VectorCodec.encode(row, as: .i8, into: $0) }
            }
            guard encoded.withUnsafeBytes({ $0.elementsEqual(block.rowBytes(node)) }) else {
                throw .corrupt(
                    file: file, offset: baseOffset + node * stride,
                    reason: "\(what) quantised row \(node) does not match item row \(rows[node])")
            }
        }
    }
}

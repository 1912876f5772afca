import MappedStorage
public import VectorIndex

/// The item vectors re-encoded as `i8` rows (`VectorCodec`), in item row order, for the HNSW walk to score instead
/// of the stored vectors (docs/INDEX.md "Quantised walk"), read in place. The walk's best candidates are re-scored
/// exactly against the stored vectors, so this copy changes which rows the walk visits, never a returned score.
///
/// Layout (file kind `walkVectors`; parameters: row count, dimension):
/// 0. `rows` — item row `r` as `VectorCodec.rowStride(dimension, .i8)` bytes at `r × stride`
///
/// `init` checks the parameters and the section size; ``verify(vectors:)`` (`Snapshot.verifyStructure()`) checks
/// that every row is its item's vector re-encoded.
public struct WalkVectorsFile: @unchecked Sendable {
    /// The rows, one per item, `i8`.
    public let matrix: VectorMatrix
    private let baseOffset: Int
    private let name: String

    init(_ file: SectionFile, rows: Int, dimension: Int) throws(SnapshotError) {
        name = file.name
        guard file.parameters[0] == UInt64(rows), file.parameters[1] == UInt64(dimension) else {
            throw .corrupt(
                file: file.name, offset: 32,
                reason: "row count/dimension \(file.parameters[0]) × \(file.parameters[1]) do not match the items "
                    + "(\(rows) × \(dimension))")
        }
        try file.expectSection(
            0, bytes: checkedProduct(rows, VectorCodec.rowStride(dimension: dimension, type: .i8)), "walk rows")
        baseOffset = file.section(0).baseOffset
        do {
            matrix = try VectorMatrix(bytes: file.section(0).bytes, count: rows, dimension: dimension, type: .i8)
        } catch {
            throw .corrupt(file: file.name, offset: baseOffset, reason: "\(error)")
        }
    }

    /// Checks that every row is its item's vector re-encoded as `i8`. O(rows × dimension).
    func verify(vectors: VectorMatrix) throws(SnapshotError) {
        let identity = (0..<Int32(matrix.count)).map { $0 }
        try identity.withUnsafeBufferPointer { (rows) throws(SnapshotError) in
            try QuantisedRows.verify(
                matrix, rows: rows, vectors: vectors, file: name, baseOffset: baseOffset, what: "walk")
        }
    }
}

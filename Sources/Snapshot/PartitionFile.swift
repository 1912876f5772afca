import MappedStorage
public import VectorIndex

/// The item rows grouped into partitions for deep candidate pools (``PartitionIndex``, docs/INDEX.md "Partitions"),
/// read in place.
///
/// Layout (file kind `partitions`; parameters: row count, partition count, dimension):
/// 0. `centroids` f32 × partitions × dimension — each partition's centroid, row-major
/// 1. `starts` i32 × (partitions + 1) — partition p is local ids `starts[p] ..< starts[p+1]`
/// 2. `rows` i32 × rows — the item row of each local id: every item exactly once, ascending within a partition
/// 3. `quantised` — the items as `i8` rows (`VectorCodec`) in local order, `VectorCodec.rowStride(dimension, .i8)`
///    bytes a row
///
/// `init` checks the sizes; ``index(matrixRows:)`` checks the starts and row ranges (O(rows));
/// ``verify(vectors:)`` (`Snapshot.verifyStructure()`) checks that the rows are a permutation, the centroids finite
/// and every quantised row the item's vector re-encoded.
public struct PartitionFile: @unchecked Sendable {
    public let partitionCount: Int
    private let rowCount: Int
    private let dimension: Int
    private let centroids: ByteView
    private let starts: Column<Int32>
    private let rows: Column<Int32>
    private let quantised: ByteView
    private let rowsOffset: Int
    private let name: String

    init(_ file: SectionFile, rows: Int, dimension: Int) throws(SnapshotError) {
        name = file.name
        guard file.parameters[0] == UInt64(rows), file.parameters[2] == UInt64(dimension) else {
            throw .corrupt(
                file: file.name, offset: 32,
                reason: "row count/dimension do not match the items (\(rows) × \(dimension))")
        }
        let partitions = try file.parameter(1, "partition count")
        guard partitions >= 1 else { throw .corrupt(file: file.name, offset: 40, reason: "no partitions") }
        try file.expectSection(
            0, bytes: checkedProduct(partitions, dimension).flatMap { checkedProduct($0, 4) }, "centroids")
        try file.expectSection(1, bytes: (partitions + 1) * 4, "partition starts")
        try file.expectSection(2, bytes: checkedProduct(rows, 4), "partition rows")
        try file.expectSection(
            3, bytes: checkedProduct(rows, VectorCodec.rowStride(dimension: dimension, type: .i8)), "quantised rows")
        partitionCount = partitions
        rowCount = rows
        self.dimension = dimension
        centroids = file.section(0)
        starts = try mappingErrors { try file.section(1).column(Int32.self, offset: 0, count: partitions + 1) }
        self.rows = try mappingErrors { try file.section(2).column(Int32.self, offset: 0, count: rows) }
        rowsOffset = file.section(2).baseOffset
        quantised = file.section(3)
    }

    /// The searchable index over a matrix of `matrixRows` rows. O(partitions + rows).
    /// - Throws: `.corrupt` naming the problem when the starts or rows are out of range or order.
    public func index(matrixRows: Int) throws(SnapshotError) -> PartitionIndex {
        do {
            return try PartitionIndex(
                centroids: try VectorMatrix(
                    bytes: centroids.bytes, count: partitionCount, dimension: dimension, type: .f32),
                starts: starts.buffer, rows: rows.buffer,
                quantised: try VectorMatrix(bytes: quantised.bytes, count: rowCount, dimension: dimension, type: .i8),
                matrixRows: matrixRows)
        } catch {
            throw .corrupt(file: name, offset: 0, reason: "\(error)")
        }
    }

    /// Checks that every item row appears exactly once, every centroid is finite and every quantised row is its
    /// item's vector re-encoded. O(rows × dimension).
    func verify(vectors: VectorMatrix) throws(SnapshotError) {
        let index = try index(matrixRows: vectors.count)
        var seen = [Bool](repeating: false, count: rowCount)
        for local in 0..<rowCount {
            let row = Int(rows[local])
            guard !seen[row] else {
                throw .corrupt(
                    file: name, offset: rowsOffset + 4 * local, reason: "item row \(row) is in two partitions")
            }
            seen[row] = true
        }
        for offset in stride(from: 0, to: centroids.count, by: 4)
        where !centroids.bytes.loadUnaligned(fromByteOffset: offset, as: Float.self).isFinite {
            throw .corrupt(file: name, offset: centroids.baseOffset + offset, reason: "centroid value not finite")
        }
        try QuantisedRows.verify(
            index.quantised, rows: rows.buffer, vectors: vectors, file: name, baseOffset: quantised.baseOffset,
            what: "partitions")
    }
}

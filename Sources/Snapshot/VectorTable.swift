import MappedStorage
public import VectorIndex

/// A mapped matrix of embedding rows (user or item vectors), read in place.
///
/// Layout (file kind `vectors`; parameters: row count, dimension, element type code
/// 0 = f32 / 1 = f16 / 2 = i8, row stride): one section of `rowCount × rowStride` bytes, rows
/// contiguous in input order, each encoded as `VectorCodec` documents.
///
/// Thread safety: immutable; read from any thread while its snapshot is alive.
public struct VectorTable: @unchecked Sendable {
    /// The rows as a `VectorIndex` matrix (for search, distance kernels, the graph).
    public let matrix: VectorMatrix
    /// The mapped file (kept alive by the snapshot).
    let file: MappedFile

    /// Number of rows.
    public var count: Int { matrix.count }
    /// Elements per row.
    public var dimension: Int { matrix.dimension }
    /// How elements are stored.
    public var elementType: VectorElementType { matrix.elementType }

    static func typeCode(_ type: VectorElementType) -> UInt64 {
        switch type {
        case .f32: 0
        case .f16: 1
        case .i8: 2
        }
    }

    init(_ section: SectionFile) throws(SnapshotError) {
        let rows = try section.parameter(0, "row count", max: Int(Int32.max) - 1)
        let dimension = try section.parameter(1, "dimension", max: 65_536)
        guard dimension > 0 else { throw .corrupt(file: section.name, offset: 40, reason: "dimension is 0") }
        let code = section.parameters[2]
        guard let type = VectorElementType.allCases.first(where: { Self.typeCode($0) == code }) else {
            throw .corrupt(file: section.name, offset: 48, reason: "unknown element type code \(code)")
        }
        let stride = VectorCodec.rowStride(dimension: dimension, type: type)
        guard section.parameters[3] == UInt64(stride) else {
            throw .corrupt(
                file: section.name, offset: 56, reason: "row stride \(section.parameters[3]), expected \(stride)")
        }
        try section.expectSection(0, bytes: checkedProduct(rows, stride), "vector")
        let bytes = section.section(0).bytes
        matrix = try mappingErrors { try VectorMatrix(bytes: bytes, count: rows, dimension: dimension, type: type) }
        file = section.file
    }

    /// The encoded bytes of `row`, in place. Precondition: `0 <= row < count`.
    @inlinable
    public func rowBytes(_ row: Int) -> UnsafeRawBufferPointer { matrix.rowBytes(row) }

    /// Decodes `row` into `destination` (at least `dimension` floats). Precondition: `0 <= row < count`.
    public func decode(row: Int, into destination: UnsafeMutableBufferPointer<Float>) {
        matrix.decodeRow(row, into: destination)
    }

    /// `row` decoded into a new array (convenience for tools and tests; allocates).
    public func vector(at row: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: dimension) { buffer, initialized in
            matrix.decodeRow(row, into: buffer)
            initialized = dimension
        }
    }
}

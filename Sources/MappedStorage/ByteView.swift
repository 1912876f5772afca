/// A bounds-checked, read-only window on bytes that came from outside the process (a mapped file).
///
/// Every accessor checks `offset` and `count` against the bytes really present — with overflow-safe
/// arithmetic — and throws `MappedStorageError.outOfBounds` naming the file and absolute offset.
/// Multi-byte integers are little-endian on disk, as the snapshot format specifies.
///
/// A `ByteView` does not own memory: it is valid while the `MappedFile` it came from is alive.
public struct ByteView: @unchecked Sendable {
    /// The bytes of this window.
    public let bytes: UnsafeRawBufferPointer
    /// The file name used in errors.
    public let name: String
    /// Offset of `bytes.baseAddress` within the file, so errors report file offsets.
    public let baseOffset: Int

    /// Wraps `bytes` (for example a buffer in a test). `name` appears in error messages.
    public init(bytes: UnsafeRawBufferPointer, name: String, baseOffset: Int = 0) {
        self.bytes = bytes
        self.name = name
        self.baseOffset = baseOffset
    }

    /// Number of bytes in the window.
    public var count: Int { bytes.count }

    /// Throws unless `offset ..< offset + count` lies inside the window (checked without overflow).
    @inlinable
    public func checkRange(offset: Int, count: Int) throws(MappedStorageError) {
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard offset >= 0, count >= 0, !overflow, end <= bytes.count else {
            throw .outOfBounds(path: name, offset: baseOffset &+ offset, count: count, size: baseOffset + bytes.count)
        }
    }

    /// A sub-window of `count` bytes at `offset`.
    public func slice(offset: Int, count: Int) throws(MappedStorageError) -> ByteView {
        try checkRange(offset: offset, count: count)
        return ByteView(
            bytes: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)]),
            name: name,
            baseOffset: baseOffset + offset
        )
    }

    /// Raw bytes of `count` bytes at `offset`, for code that reads them in place (vector kernels).
    public func rawBytes(offset: Int, count: Int) throws(MappedStorageError) -> UnsafeRawBufferPointer {
        try slice(offset: offset, count: count).bytes
    }

    /// Reads a little-endian integer at `offset` (no alignment required).
    public func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) throws(MappedStorageError) -> T {
        try checkRange(offset: offset, count: MemoryLayout<T>.size)
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// A typed column of `count` elements starting at `offset`.
    /// - Throws: `.outOfBounds` when it does not fit (including when `count × stride` overflows),
    ///   `.misaligned` when `offset` is not aligned for `Element`.
    public func column<Element: BitwiseCopyable>(
        _: Element.Type,
        offset: Int,
        count: Int
    ) throws(MappedStorageError) -> Column<Element> {
        let (length, overflow) = count.multipliedReportingOverflow(by: MemoryLayout<Element>.stride)
        guard count >= 0, !overflow else {
            throw .outOfBounds(path: name, offset: baseOffset &+ offset, count: count, size: baseOffset + bytes.count)
        }
        let window = try slice(offset: offset, count: length)
        let alignment = MemoryLayout<Element>.alignment
        if let start = window.bytes.baseAddress, Int(bitPattern: start) % alignment != 0 {
            throw .misaligned(path: name, offset: baseOffset + offset, alignment: alignment)
        }
        return Column(window.bytes.bindMemoryIfNeeded(to: Element.self, count: count))
    }
}

extension UnsafeRawBufferPointer {
    /// Mapped memory is untyped until we say otherwise; read-only typed access through
    /// `assumingMemoryBound` is sound for trivial types whose alignment we checked.
    fileprivate func bindMemoryIfNeeded<T>(to _: T.Type, count: Int) -> UnsafeBufferPointer<T> {
        guard let start = baseAddress else { return UnsafeBufferPointer(start: nil, count: 0) }
        return UnsafeBufferPointer(start: start.assumingMemoryBound(to: T.self), count: count)
    }
}

/// A read-only typed column over mapped memory: `count` little-endian values of `Element`, O(1)
/// access by row. Rankd supports little-endian hosts only (x86-64, arm64), so values are read as is.
///
/// Indexing out of range is a programming error (`precondition`), not bad input: the column's
/// length was validated against the file when it was created.
public struct Column<Element: BitwiseCopyable>: @unchecked Sendable {
    /// The elements, in place in the mapping. Valid while the owning `MappedFile` is alive.
    public let buffer: UnsafeBufferPointer<Element>

    /// Wraps an existing buffer (tests, or data built in memory).
    public init(_ buffer: UnsafeBufferPointer<Element>) {
        self.buffer = buffer
    }

    /// Number of elements.
    @inlinable public var count: Int { buffer.count }

    /// The element at `row`. O(1). `row` must be in `0 ..< count`.
    @inlinable public subscript(row: Int) -> Element {
        precondition(row >= 0 && row < buffer.count, "column row \(row) out of range 0..<\(buffer.count)")
        return buffer[row]
    }
}

#if _endian(big)
    #error("rankd's on-disk formats are little-endian and read in place; big-endian hosts are unsupported")
#endif

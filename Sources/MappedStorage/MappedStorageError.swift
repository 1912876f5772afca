/// Everything that can go wrong in the storage layer. Every case names the file it concerns, and
/// where it applies the byte offset, so an operator can find the bad byte.
public enum MappedStorageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `open(2)` failed (missing file, permissions, ...).
    case openFailed(path: String, errno: Int32)
    /// The path exists but is not a regular file (a directory, a FIFO, ...).
    case notRegularFile(path: String)
    /// `fstat(2)` or `mmap(2)` failed.
    case mapFailed(path: String, errno: Int32)
    /// A view of `count` bytes at `offset` would reach past the `size` bytes that are really there,
    /// or the arithmetic overflowed.
    case outOfBounds(path: String, offset: Int, count: Int, size: Int)
    /// A typed view was requested at an offset that is not aligned for its element type.
    case misaligned(path: String, offset: Int, alignment: Int)
    /// `read(2)` failed.
    case readFailed(path: String, errno: Int32)
    /// `write(2)`, `fsync(2)` or `ftruncate(2)` failed.
    case writeFailed(path: String, errno: Int32)
    /// `rename(2)` failed.
    case renameFailed(from: String, to: String, errno: Int32)
    /// Creating, listing or removing a directory (or a file in one) failed.
    case directoryFailed(path: String, operation: String, errno: Int32)

    public var description: String {
        switch self {
        case .openFailed(let path, let code): "\(path): cannot open: \(errnoDescription(code))"
        case .notRegularFile(let path): "\(path): not a regular file"
        case .mapFailed(let path, let code): "\(path): cannot map: \(errnoDescription(code))"
        case .outOfBounds(let path, let offset, let count, let size):
            "\(path): \(count) bytes at offset \(offset) lie outside the \(size)-byte file"
        case .misaligned(let path, let offset, let alignment):
            "\(path): offset \(offset) is not \(alignment)-byte aligned"
        case .readFailed(let path, let code): "\(path): read failed: \(errnoDescription(code))"
        case .writeFailed(let path, let code): "\(path): write failed: \(errnoDescription(code))"
        case .renameFailed(let from, let to, let code):
            "cannot rename \(from) to \(to): \(errnoDescription(code))"
        case .directoryFailed(let path, let operation, let code):
            "\(path): cannot \(operation): \(errnoDescription(code))"
        }
    }
}

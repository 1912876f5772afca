import Glibc

/// A sequential, buffered writer for building files (snapshot sections, demo data). Writes go
/// through a 1 MiB buffer to `write(2)`; `finish()` flushes and `fsync`s so a later `rename` of the
/// containing directory publishes durable bytes.
///
/// Not thread-safe: one writer per file, used by one thread.
public final class FileWriter {
    /// The path being written.
    public let path: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private let capacity = 1 << 20
    /// Bytes written so far (including buffered ones).
    public private(set) var offset = 0
    private var closed = false

    /// Creates (or truncates) `path` for writing.
    public init(path: String) throws(MappedStorageError) {
        let fd = System.openForWriting(path)
        guard fd >= 0 else { throw .openFailed(path: path, errno: errno) }
        self.fd = fd
        self.path = path
        buffer.reserveCapacity(capacity)
    }

    deinit {
        if !closed { System.close(fd) }
    }

    /// Appends raw bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws(MappedStorageError) {
        if buffer.count + bytes.count > capacity {
            try flush()
        }
        if bytes.count >= capacity {
            try writeFully(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
        offset += bytes.count
    }

    /// Appends the bytes of an array.
    public func write(_ bytes: [UInt8]) throws(MappedStorageError) {
        try bytes.withUnsafeBytes { raw in Result { () throws(MappedStorageError) in try write(raw) } }.get()
    }

    /// Appends the in-memory representation of `values` (little-endian on supported hosts).
    public func write<T: BitwiseCopyable>(contentsOf values: [T]) throws(MappedStorageError) {
        try values.withUnsafeBytes { raw in Result { () throws(MappedStorageError) in try write(raw) } }.get()
    }

    /// Appends one little-endian integer.
    public func write<T: FixedWidthInteger>(integer value: T) throws(MappedStorageError) {
        try withUnsafeBytes(of: value.littleEndian) { raw in
            Result { () throws(MappedStorageError) in try write(raw) }
        }.get()
    }

    /// Appends zero bytes until `offset` is a multiple of `alignment`.
    public func pad(toMultipleOf alignment: Int) throws(MappedStorageError) {
        let remainder = offset % alignment
        guard remainder != 0 else { return }
        try write([UInt8](repeating: 0, count: alignment - remainder))
    }

    /// Flushes, `fsync`s and closes the file. The writer is unusable afterwards.
    public func finish() throws(MappedStorageError) {
        try flush()
        closed = true
        defer { System.close(fd) }
        guard System.fsync(fd: fd) == 0 else { throw .writeFailed(path: path, errno: errno) }
    }

    private func flush() throws(MappedStorageError) {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { raw in Result { () throws(MappedStorageError) in try writeFully(raw) } }.get()
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeFully(_ bytes: UnsafeRawBufferPointer) throws(MappedStorageError) {
        var done = 0
        while done < bytes.count {
            let n = System.write(fd: fd, from: UnsafeRawBufferPointer(rebasing: bytes[done...]))
            guard n > 0 else { throw .writeFailed(path: path, errno: n == 0 ? EIO : errno) }
            done += n
        }
    }
}

/// A sequential reader with `read(2)` into a caller-sized buffer, for streaming large inputs
/// (`.npy`, JSON Lines) without mapping them — page-cache pages read this way do not count
/// towards the process's resident set.
public final class FileReader {
    /// The path being read.
    public let path: String
    private let fd: Int32
    /// The file size when opened.
    public let size: Int
    /// Bytes consumed so far.
    public private(set) var offset = 0

    /// Opens `path` for reading.
    public init(path: String) throws(MappedStorageError) {
        let fd = System.openReadOnly(path)
        guard fd >= 0 else { throw .openFailed(path: path, errno: errno) }
        guard let info = System.stat(fd: fd) else {
            let code = errno
            System.close(fd)
            throw .mapFailed(path: path, errno: code)
        }
        guard info.isRegular else {
            System.close(fd)
            throw .notRegularFile(path: path)
        }
        self.fd = fd
        self.path = path
        self.size = info.size
    }

    deinit { System.close(fd) }

    /// Reads up to `buffer.count` bytes; returns how many were read (0 at end of file).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(MappedStorageError) -> Int {
        let n = System.read(fd: fd, into: buffer)
        guard n >= 0 else { throw .readFailed(path: path, errno: errno) }
        offset += n
        return n
    }

    /// Fills `buffer` completely or throws `.outOfBounds` if the file ends first.
    public func readExactly(into buffer: UnsafeMutableRawBufferPointer) throws(MappedStorageError) {
        var done = 0
        while done < buffer.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
            guard n > 0 else {
                throw .outOfBounds(path: path, offset: offset, count: buffer.count - done, size: size)
            }
            done += n
        }
    }
}

/// File-system operations whose atomicity the snapshot builder relies on.
public enum FileSystemOps {
    /// `rename(2)`: atomically moves `from` to `to` on the same file system (a directory may
    /// replace only a missing or empty directory).
    public static func rename(_ from: String, to: String) throws(MappedStorageError) {
        guard System.rename(from, to) == 0 else { throw .renameFailed(from: from, to: to, errno: errno) }
    }

    /// `fsync(2)` on a directory, so a rename inside it is durable.
    public static func syncDirectory(_ path: String) throws(MappedStorageError) {
        let fd = System.openReadOnly(path)
        guard fd >= 0 else { throw .openFailed(path: path, errno: errno) }
        defer { System.close(fd) }
        guard System.fsync(fd: fd) == 0 else { throw .writeFailed(path: path, errno: errno) }
    }
}

extension XXHash64 {
    /// The XXH64 (seed 0) of a whole file, streamed through a 4 MiB buffer with `read(2)` — so
    /// checksumming a freshly written multi-GiB file does not grow the resident set the way
    /// hashing its mapping would.
    public static func hashFile(path: String) throws(MappedStorageError) -> UInt64 {
        let reader = try FileReader(path: path)
        var hasher = Hasher()
        var buffer = [UInt8](repeating: 0, count: 4 << 20)
        while true {
            let count = try buffer.withUnsafeMutableBytes { raw in
                Result { () throws(MappedStorageError) in try reader.read(into: raw) }
            }.get()
            if count == 0 { break }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
        return hasher.finalize()
    }
}

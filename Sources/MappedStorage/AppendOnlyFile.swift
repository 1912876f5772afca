import Glibc

/// A file that only grows at its end and is made durable explicitly: the storage under a
/// write-ahead log. `append` issues one `write(2)` for the whole buffer, `sync` one `fdatasync(2)`
/// (data and size; no other metadata is needed to read the log back), so a group of records costs
/// one write and one sync however many callers it serves.
///
/// Opening never truncates: `readAll()` returns what is there and `truncate(to:)` drops a torn
/// tail found while reading it.
///
/// Not thread-safe: one owner (the log's writer thread) uses it at a time.
public final class AppendOnlyFile {
    /// The path opened.
    public let path: String
    private let fd: Int32
    /// The file's size: where the next append lands.
    public private(set) var size: Int

    /// Opens `path` for appending, creating it (mode 0644) if it does not exist.
    /// - Throws: `.openFailed`, `.notRegularFile`.
    public init(path: String) throws(MappedStorageError) {
        let fd = System.openForAppending(path)
        guard fd >= 0 else { throw .openFailed(path: path, errno: errno) }
        guard let info = System.stat(fd: fd), info.isRegular else {
            System.close(fd)
            throw .notRegularFile(path: path)
        }
        self.fd = fd
        self.path = path
        self.size = info.size
    }

    deinit { System.close(fd) }

    /// The whole file, read from the start. O(size).
    public func readAll() throws(MappedStorageError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        guard System.seek(fd: fd, to: 0) == 0 else { throw .readFailed(path: path, errno: errno) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { raw in
                System.read(fd: fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[done...]))
            }
            guard n > 0 else {
                throw n == 0
                    ? .outOfBounds(path: path, offset: done, count: bytes.count - done, size: size)
                    : .readFailed(path: path, errno: errno)
            }
            done += n
        }
        return bytes
    }

    /// Cuts the file to `newSize` bytes and syncs, so a torn tail is gone before anything is
    /// appended after it.
    public func truncate(to newSize: Int) throws(MappedStorageError) {
        precondition(newSize >= 0 && newSize <= size, "truncate beyond the end")
        guard System.truncate(fd: fd, size: newSize) == 0, System.syncData(fd: fd) == 0 else {
            throw .writeFailed(path: path, errno: errno)
        }
        size = newSize
    }

    /// Writes `bytes` at the end of the file (not yet durable: see ``sync()``). On a failure the
    /// file is cut back to where it was, so a half-written append never precedes a later one.
    public func append(_ bytes: UnsafeRawBufferPointer) throws(MappedStorageError) {
        guard System.seek(fd: fd, to: size) == size else { throw .writeFailed(path: path, errno: errno) }
        var done = 0
        while done < bytes.count {
            let n = System.write(fd: fd, from: UnsafeRawBufferPointer(rebasing: bytes[done...]))
            guard n > 0 else {
                let code = n == 0 ? EIO : errno
                _ = System.truncate(fd: fd, size: size)
                throw .writeFailed(path: path, errno: code)
            }
            done += n
        }
        size += bytes.count
    }

    /// Appends the bytes of an array (see ``append(_:)-(UnsafeRawBufferPointer)``).
    public func append(_ bytes: [UInt8]) throws(MappedStorageError) {
        try bytes.withUnsafeBytes { raw in Result { () throws(MappedStorageError) in try append(raw) } }.get()
    }

    /// Makes every appended byte durable (`fdatasync`).
    public func sync() throws(MappedStorageError) {
        guard System.syncData(fd: fd) == 0 else { throw .writeFailed(path: path, errno: errno) }
    }
}

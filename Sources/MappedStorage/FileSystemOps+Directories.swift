import Glibc

/// Directory operations for the snapshot root (staging, version directories, the active-version
/// file): every call goes through ``System`` so kernel use stays auditable in one place.
extension FileSystemOps {
    /// What `lstat(2)` says about a path.
    public struct Entry: Sendable, Equatable {
        public var isDirectory: Bool
        public var isRegularFile: Bool
        public var size: Int
        /// Modification time, nanoseconds since the Unix epoch.
        public var modifiedNanos: Int64
        /// Inode number (with size and modification time: "is this still the same file").
        public var inode: UInt64
    }

    /// The entry at `path` (symbolic links are not followed), or nil if there is none.
    public static func entry(_ path: String) -> Entry? {
        System.lstat(path).map {
            Entry(
                isDirectory: $0.isDirectory, isRegularFile: $0.isRegular, size: $0.size,
                modifiedNanos: $0.modifiedNanos, inode: $0.inode)
        }
    }

    /// Creates `path` (mode 0755); an existing directory is fine.
    public static func makeDirectory(_ path: String) throws(MappedStorageError) {
        guard System.makeDirectory(path) == 0 else {
            let code = errno
            if code == EEXIST, entry(path)?.isDirectory == true { return }
            throw .directoryFailed(path: path, operation: "create directory", errno: code)
        }
    }

    /// Names in directory `path`, excluding `.` and `..`, sorted.
    public static func list(_ path: String) throws(MappedStorageError) -> [String] {
        guard let names = System.directoryEntries(path) else {
            throw .directoryFailed(path: path, operation: "list directory", errno: errno)
        }
        return names.sorted()
    }

    /// Removes `path` and, if it is a directory, everything under it (symbolic links are removed,
    /// never followed). A missing path is fine.
    public static func removeTree(_ path: String) throws(MappedStorageError) {
        guard let info = entry(path) else { return }
        if info.isDirectory {
            for name in try list(path) { try removeTree(path + "/" + name) }
            guard System.removeDirectory(path) == 0 || errno == ENOENT else {
                throw .directoryFailed(path: path, operation: "remove directory", errno: errno)
            }
        } else {
            guard System.unlink(path) == 0 || errno == ENOENT else {
                throw .directoryFailed(path: path, operation: "remove file", errno: errno)
            }
        }
    }

    /// Whether process `pid` is still running (used to tell a live builder's temporary directory
    /// from one left behind by a killed one).
    public static func processExists(_ pid: Int32) -> Bool {
        System.processExists(pid)
    }

    /// Bytes available to unprivileged users on the file system that holds `path`.
    public static func availableBytes(_ path: String) throws(MappedStorageError) -> Int {
        guard let bytes = System.availableBytes(path) else {
            throw .directoryFailed(path: path, operation: "statvfs", errno: errno)
        }
        return bytes
    }

    /// Replaces `path` with `bytes` atomically: writes `path.tmp`, `fsync`s it, renames it over
    /// `path` and `fsync`s the directory. A crash leaves either the old file or the new one.
    public static func writeAtomically(_ path: String, bytes: [UInt8]) throws(MappedStorageError) {
        let temporary = path + ".tmp"
        let writer = try FileWriter(path: temporary)
        try writer.write(bytes)
        try writer.finish()
        try rename(temporary, to: path)
        try syncDirectory(parent(of: path))
    }

    /// The directory part of `path` (`.` when there is none).
    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

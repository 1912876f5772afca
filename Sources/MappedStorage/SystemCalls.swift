// rankd targets Linux (glibc); the wrappers qualify calls as `Glibc.` where a name clashes.
import Glibc

// The one place where rankd talks to the kernel about files: every other module goes through the
// wrappers below, so a reader can audit mmap/madvise/munmap/rename use in a single file.

func errnoDescription(_ code: Int32) -> String {
    guard let message = strerror(code) else { return "errno \(code)" }
    return "\(String(cString: message)) (errno \(code))"
}

/// Retries a system call interrupted by a signal (`EINTR`), returning its result otherwise.
@inline(__always)
func retryingOnInterrupt<R: BinaryInteger>(_ call: () -> R) -> R {
    while true {
        let result = call()
        if result == -1 && errno == EINTR { continue }
        return result
    }
}

enum System {
    static func openReadOnly(_ path: String) -> Int32 {
        retryingOnInterrupt { open(path, O_RDONLY | O_CLOEXEC) }
    }

    static func openForWriting(_ path: String) -> Int32 {
        retryingOnInterrupt { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
    }

    /// Opens (creating, never truncating) `path` for reading and writing: an append-only log.
    static func openForAppending(_ path: String) -> Int32 {
        retryingOnInterrupt { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) }
    }

    static func truncate(fd: Int32, size: Int) -> Int32 {
        retryingOnInterrupt { ftruncate(fd, off_t(size)) }
    }

    static func seek(fd: Int32, to offset: Int) -> Int {
        Int(lseek(fd, off_t(offset), SEEK_SET))
    }

    /// `fdatasync(2)`: the data and the size are durable (a log needs no other metadata).
    static func syncData(fd: Int32) -> Int32 {
        retryingOnInterrupt { fdatasync(fd) }
    }

    static func close(_ fd: Int32) {
        // close(2) must not be retried on EINTR on Linux: the descriptor is already released.
        _ = Glibc.close(fd)
    }

    /// Returns (isRegularFile, size) or nil with errno set.
    static func stat(fd: Int32) -> (isRegular: Bool, size: Int)? {
        var info = Glibc.stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return ((info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size))
    }

    static func mapReadOnly(fd: Int32, size: Int) -> UnsafeRawPointer? {
        guard let address = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), address != MAP_FAILED else {
            return nil
        }
        return UnsafeRawPointer(address)
    }

    static func unmap(_ address: UnsafeRawPointer, size: Int) {
        _ = munmap(UnsafeMutableRawPointer(mutating: address), size)
    }

    static func advise(_ address: UnsafeRawPointer, size: Int, advice: Int32) {
        // Advice is a hint; a failure changes performance, never correctness, so it is ignored.
        _ = madvise(UnsafeMutableRawPointer(mutating: address), size, advice)
    }

    static func read(fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        retryingOnInterrupt { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    static func write(fd: Int32, from buffer: UnsafeRawBufferPointer) -> Int {
        retryingOnInterrupt { Glibc.write(fd, buffer.baseAddress, buffer.count) }
    }

    static func fsync(fd: Int32) -> Int32 {
        retryingOnInterrupt { Glibc.fsync(fd) }
    }

    static func rename(_ from: String, _ to: String) -> Int32 {
        Glibc.rename(from, to)
    }

    static var pageSize: Int { Int(sysconf(Int32(_SC_PAGESIZE))) }

    static func makeDirectory(_ path: String) -> Int32 {
        mkdir(path, 0o755)
    }

    static func removeDirectory(_ path: String) -> Int32 {
        rmdir(path)
    }

    static func unlink(_ path: String) -> Int32 {
        Glibc.unlink(path)
    }

    /// `lstat(2)`: (isDirectory, isRegular, size, modification time in ns, inode) or nil with errno set.
    static func lstat(_ path: String) -> (
        isDirectory: Bool, isRegular: Bool, size: Int, modifiedNanos: Int64, inode: UInt64
    )? {
        var info = Glibc.stat()
        guard Glibc.lstat(path, &info) == 0 else { return nil }
        let mode = info.st_mode & S_IFMT
        let nanos = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        return (mode == S_IFDIR, mode == S_IFREG, Int(info.st_size), nanos, UInt64(info.st_ino))
    }

    /// Entry names of a directory except `.` and `..`, or nil with errno set.
    static func directoryEntries(_ path: String) -> [String]? {
        guard let directory = opendir(path) else { return nil }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Bytes available to an unprivileged user on the file system holding `path`, or nil.
    /// Whether a process with this id exists (`kill(pid, 0)`; a process we may not signal exists).
    static func processExists(_ pid: Int32) -> Bool {
        Glibc.kill(pid, 0) == 0 || errno == EPERM
    }

    static func availableBytes(_ path: String) -> Int? {
        var info = Glibc.statvfs()
        // statvfs(2) shares its name with its struct, which Swift cannot call: use fstatvfs.
        let fd = openReadOnly(path)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let result = fstatvfs(fd, &info)
        guard result == 0 else { return nil }
        let (bytes, overflow) = Int(info.f_bavail).multipliedReportingOverflow(by: Int(info.f_frsize))
        return overflow ? Int.max : bytes
    }
}

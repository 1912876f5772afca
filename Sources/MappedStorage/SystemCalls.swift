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
}

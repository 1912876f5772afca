import Glibc

/// A whole file mapped read-only into memory (`mmap(PROT_READ, MAP_SHARED)`), owned by this object
/// and unmapped in `deinit` when the last reference goes.
///
/// Opening costs one `open`, one `fstat`, one `mmap` and one `close`: no page of the file is read.
/// Every view handed out is bounds-checked against the real file size (`slice`, `view`), so a
/// corrupt length or offset read from the file itself turns into a typed error, never a read past
/// the mapping.
///
/// Thread safety: immutable after `init`; share it freely. Pointers obtained from it are valid only
/// while the `MappedFile` is alive — keep a reference for as long as you use them.
public final class MappedFile: @unchecked Sendable {
    /// The path the file was opened from (used in error messages).
    public let path: String
    /// The file size in bytes at the time it was mapped.
    public let count: Int
    private let base: UnsafeRawPointer?

    /// Maps `path` read-only.
    /// - Throws: `MappedStorageError.openFailed`, `.notRegularFile` or `.mapFailed`; on failure
    ///   nothing stays mapped or open.
    public init(path: String) throws(MappedStorageError) {
        let fd = System.openReadOnly(path)
        guard fd >= 0 else { throw .openFailed(path: path, errno: errno) }
        defer { System.close(fd) }
        guard let info = System.stat(fd: fd) else { throw .mapFailed(path: path, errno: errno) }
        guard info.isRegular else { throw .notRegularFile(path: path) }
        self.path = path
        self.count = info.size
        if info.size == 0 {
            // mmap of length 0 is EINVAL; an empty file is an empty view.
            self.base = nil
        } else {
            guard let address = System.mapReadOnly(fd: fd, size: info.size) else {
                throw .mapFailed(path: path, errno: errno)
            }
            self.base = address
        }
    }

    deinit {
        if let base { System.unmap(base, size: count) }
    }

    /// The whole file. Valid while `self` is alive.
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base, count: count)
    }

    /// A bounds-checked view over the whole file, for header and section parsing.
    public var view: ByteView {
        ByteView(bytes: bytes, name: path, baseOffset: 0)
    }

    /// Tells the kernel the file will be read soon (`MADV_WILLNEED`) so readahead starts now.
    public func adviseWillNeed() {
        if let base { System.advise(base, size: count, advice: MADV_WILLNEED) }
    }

    /// Tells the kernel accesses will be random (`MADV_RANDOM`): no readahead around faults. Good
    /// for large vector files walked by a graph search after they are resident.
    public func adviseRandom() {
        if let base { System.advise(base, size: count, advice: MADV_RANDOM) }
    }

    /// Makes every page of the file resident: `MADV_WILLNEED`, then reads one byte per page so the
    /// page tables are populated too and the first requests after activation take no page faults.
    /// Cost: O(file size / page size) loads plus whatever disk I/O the page cache does not absorb.
    /// - Returns: the number of pages touched.
    @discardableResult
    public func prefault() -> Int {
        guard let base else { return 0 }
        adviseWillNeed()
        let page = System.pageSize
        var sink: UInt8 = 0
        var offset = 0
        var pages = 0
        while offset < count {
            sink &+= base.load(fromByteOffset: offset, as: UInt8.self)
            offset += page
            pages += 1
        }
        blackHole(sink)
        return pages
    }
}

/// Consumes a value so the optimiser cannot drop the loads that produced it.
@_optimize(none)
private func blackHole(_: UInt8) {}

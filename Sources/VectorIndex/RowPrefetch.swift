import CPrefetch

extension KernelScorer {
    /// Prefetches every cache line of `row`. The walk issues this for all unvisited neighbours of a node before
    /// scoring any of them, so their memory loads overlap instead of each kernel waiting for its own row.
    @usableFromInline @inline(__always)
    func prefetch(_ row: Int32) {
        let start = base + Int(row) * stride
        var offset = 0
        while offset < stride {
            rankd_prefetch(start + offset)
            offset += 64
        }
        rankd_prefetch(start + (stride - 1))  // a row not 64-byte aligned spans one more line
    }
}

/// Prefetches the cache line holding `pointer`.
@inline(__always)
func prefetchLine(_ pointer: UnsafeRawPointer) {
    rankd_prefetch(pointer)
}

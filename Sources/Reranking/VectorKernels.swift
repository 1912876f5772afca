/// SIMD kernels over `Float` vectors used by the diversifiers.
///
/// The pointers come from `CandidateSet`'s vector storage and `RerankScratch`'s buffers; both are
/// plain Swift arrays, so alignment is only guaranteed to `Float`, hence the unaligned loads.
/// x86-64 without `-mfma` has no fused multiply-add, so products and sums stay separate
/// (`addingProduct` would call `fmaf` per lane).
enum VectorKernels {
    /// `Σ a[i]·b[i]` for `i < count`.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        let ra = UnsafeRawPointer(a)
        let rb = UnsafeRawPointer(b)
        // SIMD8 × 2 accumulators measured ~1.5× faster than SIMD16 on the x86-64 baseline (SSE2),
        // where SIMD16 arithmetic is split into four registers per operand.
        var acc0 = SIMD8<Float>()
        var acc1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= count {
            let o = i &* 4
            acc0 +=
                ra.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                * rb.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            acc1 +=
                ra.loadUnaligned(fromByteOffset: o &+ 32, as: SIMD8<Float>.self)
                * rb.loadUnaligned(fromByteOffset: o &+ 32, as: SIMD8<Float>.self)
            i &+= 16
        }
        var sum = (acc0 + acc1).sum()
        while i < count {
            sum += a[i] * b[i]
            i &+= 1
        }
        return sum
    }
}

/// SIMD kernels over `Float` vectors used by the diversifiers.
///
/// The pointers come from `CandidateSet`'s vector storage and `RerankScratch`'s buffers; both are
/// plain Swift arrays, so alignment is only guaranteed to `Float`, hence the unaligned loads.
/// Products and sums stay separate: `addingProduct` is a fused multiply-add, which the x86-64
/// baseline (no `-mfma`) would turn into a call to `fmaf` per lane. A host-tuned build
/// (`-target-cpu haswell`, see docs/OPERATIONS.md) runs each `SIMD8` operation as one AVX
/// instruction instead of two SSE ones.
enum VectorKernels {
    /// `Σ a[i]·b[i]` for `i < count`.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        let ra = UnsafeRawPointer(a)
        let rb = UnsafeRawPointer(b)
        @inline(__always) func product8(_ i: Int) -> SIMD8<Float> {
            ra.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
                * rb.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
        }
        // SIMD8 × 2 accumulators measured ~1.5× faster than SIMD16 on the x86-64 baseline (SSE2),
        // where SIMD16 arithmetic is split into four registers per operand.
        var acc0 = SIMD8<Float>()
        var acc1 = SIMD8<Float>()
        var i = 0
        while i &+ 16 <= count {
            acc0 += product8(i)
            acc1 += product8(i &+ 8)
            i &+= 16
        }
        // The DPP's factor rows are short (one entry per chosen item): vector tails, not scalar.
        if i &+ 8 <= count {
            acc0 += product8(i)
            i &+= 8
        }
        let acc = acc0 + acc1
        var half = acc.lowHalf + acc.highHalf
        if i &+ 4 <= count {
            half +=
                ra.loadUnaligned(fromByteOffset: i &* 4, as: SIMD4<Float>.self)
                * rb.loadUnaligned(fromByteOffset: i &* 4, as: SIMD4<Float>.self)
            i &+= 4
        }
        // A pairwise horizontal sum: `SIMD.sum()` adds the lanes one by one.
        let quarter = half.lowHalf + half.highHalf
        var sum = quarter[0] + quarter[1]
        while i < count {
            sum += a[i] * b[i]
            i &+= 1
        }
        return sum
    }
}

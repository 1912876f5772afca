/// SIMD kernels over `Float` vectors used by the diversifiers.
///
/// The pointers come from `CandidateSet`'s vector storage and `Reranker`'s buffers; both are
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

extension VectorKernels {
    /// Eight dot products at once, for eight items stored lane-wise: lane `c` of the result is
    /// `Σ a_c[m]·b[m]` for `m < count`, where `a_c[m]` is lane `c` of the m-th `SIMD8` at `lanes`.
    /// Each lane adds the same products in the same order as `dot(a_c, b, count:)` (its two
    /// accumulators, its tails, its pairwise horizontal sum), so it is bit-identical to it.
    ///
    /// No horizontal sums and no per-item loop overhead: a broadcast, a multiply and an add per
    /// `m` for eight items. `dot`'s sixteen accumulator lanes are kept in two passes of eight
    /// registers (lanes 0–3 of both accumulators, then lanes 4–7), which fit the 16 AVX registers.
    @inline(__always)
    static func dot8(lanes: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> SIMD8<Float> {
        let ra = UnsafeRawPointer(lanes)
        @inline(__always) func product(_ m: Int) -> SIMD8<Float> {
            ra.loadUnaligned(fromByteOffset: m &* 32, as: SIMD8<Float>.self) * SIMD8(repeating: b[m])
        }
        // `dot` runs 16 elements per iteration into acc0 (first 8) and acc1 (next 8), then at most
        // one more 8 into acc0. `quad(l)` returns lanes l ..< l + 4 of its acc0 + acc1.
        let chunks = count / 16
        let eight = chunks &* 16 &+ 8 <= count
        @inline(__always) func quad(_ l: Int) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
            var (x0, x1, x2, x3) = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
            var (y0, y1, y2, y3) = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>())
            var m = l
            for _ in 0..<chunks {
                x0 += product(m)
                x1 += product(m &+ 1)
                x2 += product(m &+ 2)
                x3 += product(m &+ 3)
                y0 += product(m &+ 8)
                y1 += product(m &+ 9)
                y2 += product(m &+ 10)
                y3 += product(m &+ 11)
                m &+= 16
            }
            if eight {
                x0 += product(m)
                x1 += product(m &+ 1)
                x2 += product(m &+ 2)
                x3 += product(m &+ 3)
            }
            return (x0 + y0, x1 + y1, x2 + y2, x3 + y3)
        }
        let (a0, a1, a2, a3) = quad(0)
        let (a4, a5, a6, a7) = quad(4)
        // `half` = low + high lanes, then the 4-element tail.
        var (h0, h1, h2, h3) = (a0 + a4, a1 + a5, a2 + a6, a3 + a7)
        var i = chunks &* 16 &+ (eight ? 8 : 0)
        if i &+ 4 <= count {
            h0 += product(i)
            h1 += product(i &+ 1)
            h2 += product(i &+ 2)
            h3 += product(i &+ 3)
            i &+= 4
        }
        // `quarter` = low + high of `half`, then its two lanes, then the scalar tail.
        var sum = (h0 + h2) + (h1 + h3)
        while i < count {
            sum += product(i)
            i &+= 1
        }
        return sum
    }

    /// Copies `rowCount` (≤ 8) rows of `dimension` floats (row-major, from `rows`) into
    /// `dimension` `SIMD8`s at `lanes`, the m-th holding component m of each row in lane order
    /// (zeros for missing rows): the layout `dot8` reads. 8 × 8 tiles are transposed in
    /// registers (unpack, shuffle, swap halves) rather than stored one float at a time.
    static func transpose8(
        rows: UnsafePointer<Float>, rowCount: Int, dimension d: Int, into lanes: UnsafeMutablePointer<Float>
    ) {
        let source = UnsafeRawPointer(rows)
        let target = UnsafeMutableRawPointer(lanes)
        @inline(__always) func row(_ r: Int, _ m: Int) -> SIMD8<Float> {
            source.loadUnaligned(fromByteOffset: (r &* d &+ m) &* 4, as: SIMD8<Float>.self)
        }
        var m = 0
        // The last, partial block goes one float at a time.
        while rowCount == 8, m &+ 8 <= d {
            let (r0, r1, r2, r3) = (row(0, m), row(1, m), row(2, m), row(3, m))
            let (r4, r5, r6, r7) = (row(4, m), row(5, m), row(6, m), row(7, m))
            @inline(__always) func unpackLow(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
                SIMD8(a[0], b[0], a[1], b[1], a[4], b[4], a[5], b[5])
            }
            @inline(__always) func unpackHigh(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
                SIMD8(a[2], b[2], a[3], b[3], a[6], b[6], a[7], b[7])
            }
            @inline(__always) func pairsLow(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
                SIMD8(a[0], a[1], b[0], b[1], a[4], a[5], b[4], b[5])
            }
            @inline(__always) func pairsHigh(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
                SIMD8(a[2], a[3], b[2], b[3], a[6], a[7], b[6], b[7])
            }
            let (t0, t1, t2, t3) = (unpackLow(r0, r1), unpackHigh(r0, r1), unpackLow(r2, r3), unpackHigh(r2, r3))
            let (t4, t5, t6, t7) = (unpackLow(r4, r5), unpackHigh(r4, r5), unpackLow(r6, r7), unpackHigh(r6, r7))
            // u_k: component k (low half) and k + 4 (high half) of rows 0–3, then of rows 4–7.
            let (u0, u1, u2, u3) = (pairsLow(t0, t2), pairsHigh(t0, t2), pairsLow(t1, t3), pairsHigh(t1, t3))
            let (u4, u5, u6, u7) = (pairsLow(t4, t6), pairsHigh(t4, t6), pairsLow(t5, t7), pairsHigh(t5, t7))
            @inline(__always) func store(_ k: Int, _ v: SIMD8<Float>) {
                target.storeBytes(of: v, toByteOffset: (m &+ k) &* 32, as: SIMD8<Float>.self)
            }
            store(0, SIMD8(lowHalf: u0.lowHalf, highHalf: u4.lowHalf))
            store(1, SIMD8(lowHalf: u1.lowHalf, highHalf: u5.lowHalf))
            store(2, SIMD8(lowHalf: u2.lowHalf, highHalf: u6.lowHalf))
            store(3, SIMD8(lowHalf: u3.lowHalf, highHalf: u7.lowHalf))
            store(4, SIMD8(lowHalf: u0.highHalf, highHalf: u4.highHalf))
            store(5, SIMD8(lowHalf: u1.highHalf, highHalf: u5.highHalf))
            store(6, SIMD8(lowHalf: u2.highHalf, highHalf: u6.highHalf))
            store(7, SIMD8(lowHalf: u3.highHalf, highHalf: u7.highHalf))
            m &+= 8
        }
        while m < d {
            for r in 0..<8 { lanes[m &* 8 &+ r] = r < rowCount ? rows[r &* d &+ m] : 0 }
            m &+= 1
        }
    }
}

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
        var acc0 = SIMD16<Float>()
        var acc1 = SIMD16<Float>()
        var i = 0
        // Two accumulators hide the add latency of one dependency chain.
        while i + 32 <= count {
            let o = i &* 4
            acc0 += ra.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            acc1 += ra.loadUnaligned(fromByteOffset: o &+ 64, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: o &+ 64, as: SIMD16<Float>.self)
            i &+= 32
        }
        while i + 16 <= count {
            let o = i &* 4
            acc0 += ra.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
                * rb.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            i &+= 16
        }
        var sum = (acc0 + acc1).sum()
        while i < count {
            sum += a[i] * b[i]
            i &+= 1
        }
        return sum
    }

    /// `y[i] -= alpha · x[i]` for `i < count`.
    @inline(__always)
    static func subtractScaled(
        _ x: UnsafePointer<Float>, times alpha: Float, from y: UnsafeMutablePointer<Float>, count: Int
    ) {
        let rx = UnsafeRawPointer(x)
        let ry = UnsafeMutableRawPointer(y)
        let a = SIMD16<Float>(repeating: alpha)
        var i = 0
        while i + 16 <= count {
            let o = i &* 4
            let v = ry.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
                - a * rx.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            ry.storeBytes(of: v, toByteOffset: o, as: SIMD16<Float>.self)
            i &+= 16
        }
        while i < count {
            y[i] -= alpha * x[i]
            i &+= 1
        }
    }

    /// Applies the plane rotation `(x, y) ← (c·x + s·y, −s·x + c·y)` element-wise.
    @inline(__always)
    static func rotate(
        _ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, c: Float, s: Float, count: Int
    ) {
        let rx = UnsafeMutableRawPointer(x)
        let ry = UnsafeMutableRawPointer(y)
        let vc = SIMD16<Float>(repeating: c)
        let vs = SIMD16<Float>(repeating: s)
        var i = 0
        while i + 16 <= count {
            let o = i &* 4
            let a = rx.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            let b = ry.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            rx.storeBytes(of: vc * a + vs * b, toByteOffset: o, as: SIMD16<Float>.self)
            ry.storeBytes(of: vc * b - vs * a, toByteOffset: o, as: SIMD16<Float>.self)
            i &+= 16
        }
        while i < count {
            let a = x[i]
            let b = y[i]
            x[i] = c * a + s * b
            y[i] = c * b - s * a
            i &+= 1
        }
    }
}

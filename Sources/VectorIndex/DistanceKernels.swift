// Distance kernels: one per metric, generic over how a row's elements are loaded (f32, f16, i8), reading rows in
// place. The graph code never sees element types; it is generic over `RowKernel`.

/// Loads the elements of one encoded row (layout in `VectorCodec`) as Float32 lanes, unscaled; `scale` is the
/// factor that turns loaded values into the row's real values (1 except for i8).
@usableFromInline
protocol ElementLoader {
    static func load16(_ row: UnsafeRawPointer, _ index: Int) -> SIMD16<Float>
    static func load1(_ row: UnsafeRawPointer, _ index: Int) -> Float
    static func scale(_ row: UnsafeRawPointer) -> Float
    /// `sum += query × row[index ..< index + 16]`, the inner product's step.
    static func accumulate(_ sum: inout SIMD16<Float>, _ query: SIMD16<Float>, _ row: UnsafeRawPointer, _ index: Int)
}

extension ElementLoader {
    @inlinable @inline(__always)
    static func accumulate(_ sum: inout SIMD16<Float>, _ query: SIMD16<Float>, _ row: UnsafeRawPointer, _ index: Int) {
        sum += query * load16(row, index)
    }
}

@usableFromInline
enum F32Elements: ElementLoader {
    @inlinable @inline(__always)
    static func load16(_ row: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        row.loadUnaligned(fromByteOffset: 4 * index, as: SIMD16<Float>.self)
    }
    @inlinable @inline(__always)
    static func load1(_ row: UnsafeRawPointer, _ index: Int) -> Float {
        row.loadUnaligned(fromByteOffset: 4 * index, as: Float.self)
    }
    @inlinable @inline(__always)
    static func scale(_ row: UnsafeRawPointer) -> Float { 1 }
}

@usableFromInline
enum F16Elements: ElementLoader {
    @inlinable @inline(__always)
    static func load16(_ row: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        SIMD16<Float>(row.loadUnaligned(fromByteOffset: 2 * index, as: SIMD16<Float16>.self))
    }
    @inlinable @inline(__always)
    static func load1(_ row: UnsafeRawPointer, _ index: Int) -> Float {
        Float(row.loadUnaligned(fromByteOffset: 2 * index, as: Float16.self))
    }
    @inlinable @inline(__always)
    static func scale(_ row: UnsafeRawPointer) -> Float { 1 }
}

@usableFromInline
enum I8Elements: ElementLoader {
    @inlinable @inline(__always)
    static func load16(_ row: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        // Lane by lane on purpose: the generic `SIMD16<Float>(SIMD16<Int8>)` is an out-of-line call per load (13% of
        // a quantised scan's profile, and it blocks vectorising the loop around it); these sixteen conversions are
        // recognised as four sign-extending loads and four `cvtdq2ps`, inlined.
        let v = row.loadUnaligned(fromByteOffset: 4 + index, as: SIMD16<Int8>.self)
        return SIMD16<Float>(
            Float(v[0]), Float(v[1]), Float(v[2]), Float(v[3]), Float(v[4]), Float(v[5]), Float(v[6]), Float(v[7]),
            Float(v[8]), Float(v[9]), Float(v[10]), Float(v[11]), Float(v[12]), Float(v[13]), Float(v[14]),
            Float(v[15]))
    }
    @inlinable @inline(__always)
    static func load1(_ row: UnsafeRawPointer, _ index: Int) -> Float {
        Float(row.loadUnaligned(fromByteOffset: 4 + index, as: Int8.self))
    }
    @inlinable @inline(__always)
    static func scale(_ row: UnsafeRawPointer) -> Float {
        row.loadUnaligned(fromByteOffset: 0, as: Float.self)
    }
    /// Fused multiply-add where the build targets a CPU that has it (`RANKD_FMA`, set by the Makefile's tuned
    /// release builds): 15% more quantised-scan throughput (docs/BENCHMARKS.md "Category pages"). Only the i8
    /// rows use it — quantised blocks, whose scores only pick candidates for exact re-scoring, and i8 snapshots —
    /// so f32 scores, and graphs built from f32 rows, are the same bytes in tuned and portable builds. Without FMA
    /// in the target, `addProduct` would be a scalar `fmaf` call per lane.
    @inlinable @inline(__always)
    static func accumulate(_ sum: inout SIMD16<Float>, _ query: SIMD16<Float>, _ row: UnsafeRawPointer, _ index: Int) {
        #if RANKD_FMA
            sum.addProduct(query, load16(row, index))
        #else
            sum += query * load16(row, index)
        #endif
    }
}

/// A similarity between a Float32 query and one encoded row; higher is better.
@usableFromInline
protocol RowKernel {
    static func score(_ query: UnsafePointer<Float>, _ row: UnsafeRawPointer, _ dimension: Int) -> Float
}

/// Sum of the 16 lanes by halving. `SIMD.sum()` compiled to an out-of-line generic call per kernel evaluation (14% of
/// an HNSW search profile); this is three vector adds and three scalar ones, inlined.
@inlinable @inline(__always)
func horizontalSum(_ v: SIMD16<Float>) -> Float {
    let v8 = v.lowHalf + v.highHalf
    let v4 = v8.lowHalf + v8.highHalf
    return (v4[0] + v4[2]) + (v4[1] + v4[3])
}

@inlinable @inline(__always)
func loadQuery16(_ query: UnsafePointer<Float>, _ index: Int) -> SIMD16<Float> {
    UnsafeRawPointer(query).loadUnaligned(fromByteOffset: 4 * index, as: SIMD16<Float>.self)
}

/// Inner product `q · x`.
@usableFromInline
enum InnerProductKernel<Elements: ElementLoader>: RowKernel {
    @inlinable @inline(__always)
    static func score(_ query: UnsafePointer<Float>, _ row: UnsafeRawPointer, _ dimension: Int) -> Float {
        // Two accumulators break the add dependency chain (measurably faster at 64+ dimensions).
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= dimension {
            Elements.accumulate(&a0, loadQuery16(query, i), row, i)
            Elements.accumulate(&a1, loadQuery16(query, i + 16), row, i + 16)
            i += 32
        }
        if i + 16 <= dimension {
            Elements.accumulate(&a0, loadQuery16(query, i), row, i)
            i += 16
        }
        var sum = horizontalSum(a0 + a1)
        while i < dimension {
            sum += query[i] * Elements.load1(row, i)
            i += 1
        }
        return sum * Elements.scale(row)
    }
}

/// Cosine similarity `q · x / |x|`, where the query has already been normalised to unit length.
/// A zero row scores 0. The i8 scale cancels, so it is never read.
@usableFromInline
enum CosineKernel<Elements: ElementLoader>: RowKernel {
    @inlinable @inline(__always)
    static func score(_ query: UnsafePointer<Float>, _ row: UnsafeRawPointer, _ dimension: Int) -> Float {
        var dot = SIMD16<Float>(), norm = SIMD16<Float>()
        var i = 0
        while i + 16 <= dimension {
            let x = Elements.load16(row, i)
            dot += loadQuery16(query, i) * x
            norm += x * x
            i += 16
        }
        var d = horizontalSum(dot), n = horizontalSum(norm)
        while i < dimension {
            let x = Elements.load1(row, i)
            d += query[i] * x
            n += x * x
            i += 1
        }
        return n > 0 ? d / n.squareRoot() : 0
    }
}

/// Negated squared Euclidean distance `-|q - x|²`.
@usableFromInline
enum NegativeSquaredL2Kernel<Elements: ElementLoader>: RowKernel {
    @inlinable @inline(__always)
    static func score(_ query: UnsafePointer<Float>, _ row: UnsafeRawPointer, _ dimension: Int) -> Float {
        let scale = Elements.scale(row)
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= dimension {
            let d = loadQuery16(query, i) - Elements.load16(row, i) * scale
            acc += d * d
            i += 16
        }
        var sum = horizontalSum(acc)
        while i < dimension {
            let d = query[i] - Elements.load1(row, i) * scale
            sum += d * d
            i += 1
        }
        return -sum
    }
}

/// Scores rows of a matrix against one query with a fixed kernel. The query pointer is owned by the caller's
/// scratch and must stay valid while the scorer is used.
@usableFromInline
protocol RowScorer {
    func score(_ row: Int32) -> Float
    /// Hints that `row` will be scored soon: start loading its bytes (see RowPrefetch.swift).
    func prefetch(_ row: Int32)
}

@usableFromInline
struct KernelScorer<Kernel: RowKernel>: RowScorer {
    @usableFromInline let query: UnsafePointer<Float>
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let stride: Int
    @usableFromInline let dimension: Int

    @inlinable
    init(query: UnsafePointer<Float>, base: UnsafeRawPointer, stride: Int, dimension: Int) {
        self.query = query
        self.base = base
        self.stride = stride
        self.dimension = dimension
    }

    @inlinable @inline(__always)
    func score(_ row: Int32) -> Float {
        Kernel.score(query, base + Int(row) * stride, dimension)
    }
}

extension Metric {
    /// Whether the query is normalised to unit length before scoring (cosine).
    var normalizesQuery: Bool { self == .cosine }
}

/// Receives a concrete scorer type; implemented by search entry points so the generic code is specialised for each
/// of the 9 (metric × element type) kernels. `dispatch` is the single place where a kernel is chosen.
protocol RowScorerVisitor<Result> {
    associatedtype Result
    mutating func visit<Scorer: RowScorer>(_ scorer: Scorer) -> Result
}

extension RowScorerVisitor {
    /// Builds the scorer for `metric` and `matrix` and visits it.
    mutating func dispatch(metric: Metric, matrix: VectorMatrix, query: UnsafePointer<Float>) -> Result {
        let base = matrix.bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!
        let stride = matrix.rowStride, dimension = matrix.dimension
        switch (metric, matrix.elementType) {
        case (.ip, .f32):
            return visit(
                KernelScorer<InnerProductKernel<F32Elements>>(
                    query: query, base: base, stride: stride, dimension: dimension))
        case (.ip, .f16):
            return visit(
                KernelScorer<InnerProductKernel<F16Elements>>(
                    query: query, base: base, stride: stride, dimension: dimension))
        case (.ip, .i8):
            return visit(
                KernelScorer<InnerProductKernel<I8Elements>>(
                    query: query, base: base, stride: stride, dimension: dimension))
        case (.cosine, .f32):
            return visit(
                KernelScorer<CosineKernel<F32Elements>>(query: query, base: base, stride: stride, dimension: dimension))
        case (.cosine, .f16):
            return visit(
                KernelScorer<CosineKernel<F16Elements>>(query: query, base: base, stride: stride, dimension: dimension))
        case (.cosine, .i8):
            return visit(
                KernelScorer<CosineKernel<I8Elements>>(query: query, base: base, stride: stride, dimension: dimension))
        case (.l2, .f32):
            return visit(
                KernelScorer<NegativeSquaredL2Kernel<F32Elements>>(
                    query: query, base: base, stride: stride, dimension: dimension))
        case (.l2, .f16):
            return visit(
                KernelScorer<NegativeSquaredL2Kernel<F16Elements>>(
                    query: query, base: base, stride: stride, dimension: dimension))
        case (.l2, .i8):
            return visit(
                KernelScorer<NegativeSquaredL2Kernel<I8Elements>>(
                    query: query, base: base, stride: stride, dimension: dimension))
        }
    }
}

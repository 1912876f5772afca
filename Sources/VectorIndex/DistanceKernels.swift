// Distance kernels: one per metric, generic over how a row's elements are loaded (f32, f16, i8), reading rows in
// place. The graph code never sees element types; it is generic over `RowKernel`.

import CKernels
import Glibc

/// A CPU-dispatched C batch kernel (`rankd_batch_kernel` in Sources/CKernels): scores `count` rows given by id,
/// `(query, base, stride, dimension, rows, count, out)`. Spelled in Swift types so the protocols below need not
/// export the C module.
@usableFromInline
typealias BatchKernel =
    @convention(c) (
        UnsafePointer<Float>?, UnsafeRawPointer?, Int, Int32, UnsafePointer<Int32>?, Int32, UnsafeMutablePointer<Float>?
    ) -> Void

/// Loads the elements of one encoded row (layout in `VectorCodec`) as Float32 lanes, unscaled; `scale` is the
/// factor that turns loaded values into the row's real values (1 except for i8).
@usableFromInline
protocol ElementLoader {
    static func load16(_ row: UnsafeRawPointer, _ index: Int) -> SIMD16<Float>
    static func load1(_ row: UnsafeRawPointer, _ index: Int) -> Float
    static func scale(_ row: UnsafeRawPointer) -> Float
    /// `sum += query × row[index ..< index + 16]`, the inner product's step.
    static func accumulate(_ sum: inout SIMD16<Float>, _ query: SIMD16<Float>, _ row: UnsafeRawPointer, _ index: Int)
    /// The CPU-dispatched batch inner-product kernel for this encoding, if one was selected (``KernelDispatch``).
    static var innerProductBatch: BatchKernel? { get }
}

extension ElementLoader {
    @usableFromInline static var innerProductBatch: BatchKernel? { nil }

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
    @usableFromInline static var innerProductBatch: BatchKernel? { KernelDispatch.kernels.ip_f32 }
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
    @usableFromInline static var innerProductBatch: BatchKernel? { KernelDispatch.kernels.ip_i8 }
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
    /// A CPU-dispatched C kernel that scores many rows per call with the same result as `score`, where one exists
    /// for this kernel on this CPU (``KernelDispatch``); nil otherwise.
    static var batchKernel: BatchKernel? { get }
}

extension RowKernel {
    @usableFromInline static var batchKernel: BatchKernel? { nil }
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
    @usableFromInline static var batchKernel: BatchKernel? { Elements.innerProductBatch }

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
    /// `scores[i] = score(rows[i])` for `i < count`: the walk scores a node's unvisited neighbours in one call, so a
    /// dispatched C kernel costs one indirect call per expanded node, not one per row.
    func scoreBatch(_ rows: UnsafePointer<Int32>, _ count: Int, into scores: UnsafeMutablePointer<Float>)
}

extension RowScorer {
    @usableFromInline @inline(__always)
    func scoreBatch(_ rows: UnsafePointer<Int32>, _ count: Int, into scores: UnsafeMutablePointer<Float>) {
        for index in 0..<count { scores[index] = score(rows[index]) }
    }
}

@usableFromInline
struct KernelScorer<Kernel: RowKernel>: RowScorer {
    @usableFromInline let query: UnsafePointer<Float>
    @usableFromInline let base: UnsafeRawPointer
    @usableFromInline let stride: Int
    @usableFromInline let dimension: Int
    /// `Kernel.batchKernel`, read once per scorer (so once per search).
    let batch: BatchKernel?

    init(query: UnsafePointer<Float>, base: UnsafeRawPointer, stride: Int, dimension: Int) {
        self.init(query: query, base: base, stride: stride, dimension: dimension, batch: Kernel.batchKernel)
    }

    /// A scorer with an explicit batch kernel (nil: the Swift kernel scores every row). Tests compare both paths.
    init(
        query: UnsafePointer<Float>, base: UnsafeRawPointer, stride: Int, dimension: Int, batch: BatchKernel?
    ) {
        self.query = query
        self.base = base
        self.stride = stride
        self.dimension = dimension
        self.batch = batch
    }

    @inlinable @inline(__always)
    func score(_ row: Int32) -> Float {
        Kernel.score(query, base + Int(row) * stride, dimension)
    }

    @usableFromInline @inline(__always)
    func scoreBatch(_ rows: UnsafePointer<Int32>, _ count: Int, into scores: UnsafeMutablePointer<Float>) {
        if let batch {
            batch(query, base, stride, Int32(dimension), rows, Int32(count), scores)
        } else {
            for index in 0..<count { scores[index] = score(rows[index]) }
        }
    }
}

/// The CPU-dispatched C kernels (Sources/CKernels), chosen once per process: AVX2 + FMA where the CPU has them, even
/// in a portable (baseline x86-64) build, whose Swift kernels are compiled for SSE2 only. `RANKD_KERNELS=portable`
/// in the environment keeps the Swift kernels (to compare, or to rule the C ones out). docs/INDEX.md "Kernels and
/// CPU dispatch".
enum KernelDispatch {
    /// 1 when the CPU runs the AVX2 kernels and the environment does not turn them off, else 0.
    static let level: Int32 = {
        if let value = getenv("RANKD_KERNELS"), String(cString: value) == "portable" { return 0 }
        return rankd_kernels_cpu_level()
    }()

    /// The batch kernels in use (NULL entries: the Swift kernel serves).
    static let kernels = rankd_kernels_select(level)

    /// What `level` means, for logs and benchmark output.
    static var name: String { level >= 1 ? "avx2" : "swift" }
}

/// What callers outside the module may know about the kernels.
public enum DistanceKernels {
    /// The walk's kernels in this process: `avx2` (the C kernels of Sources/CKernels) or `swift` (the Swift kernels
    /// as compiled: SSE2 in a portable build, AVX2 in a host-tuned one).
    public static var inUse: String { KernelDispatch.name }
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

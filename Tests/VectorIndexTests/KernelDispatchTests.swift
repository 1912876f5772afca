import CKernels
import TestSupport
import Testing

@testable import VectorIndex

/// The run-time dispatched C kernels (Sources/CKernels) against the Swift kernels they stand in for.
@Suite struct KernelDispatchTests {
    /// The AVX2 table, or nil on a CPU without AVX2 + FMA (whose table must then be empty).
    static func avx2Kernels() -> rankd_kernel_table? {
        let table = rankd_kernels_select(1)
        guard rankd_kernels_cpu_level() >= 1 else {
            #expect(table.ip_f32 == nil && table.ip_i8 == nil, "no AVX2 on this CPU, yet kernels were selected")
            return nil
        }
        #expect(table.ip_f32 != nil && table.ip_i8 != nil)
        return table
    }

    @Test func levelZeroSelectsNoKernels() {
        let table = rankd_kernels_select(0)
        #expect(table.ip_f32 == nil)
        #expect(table.ip_i8 == nil)
    }

    /// Scores `rows` (given in a shuffled order, with repeats) through the scorer's batch path with `batch`, and one by
    /// one through the Swift kernel.
    static func batchAndSingle<Kernel: RowKernel>(
        _ kernel: Kernel.Type, rows: [[Float]], query: [Float], type: VectorElementType, batch: BatchKernel?
    ) throws -> (batch: [Float], single: [Float]) {
        let dimension = query.count
        let bytes = Fixtures.encode(rows, as: type)
        return try bytes.withUnsafeBytes { raw in
            let matrix = try VectorMatrix(bytes: raw, count: rows.count, dimension: dimension, type: type)
            let scratch = SearchScratch()
            let prepared = query.withUnsafeBufferPointer { scratch.prepareQuery($0, normalize: false) }
            let base = matrix.bytes.baseAddress!
            let scorer = KernelScorer<Kernel>(
                query: prepared, base: base, stride: matrix.rowStride, dimension: dimension, batch: batch)
            let ids: [Int32] = (0..<rows.count).reversed().map { Int32($0) } + [0, Int32(rows.count - 1), 0]
            var scores = [Float](repeating: .nan, count: ids.count)
            ids.withUnsafeBufferPointer { idPointer in
                scores.withUnsafeMutableBufferPointer {
                    scorer.scoreBatch(idPointer.baseAddress!, ids.count, into: $0.baseAddress!)
                }
            }
            return (scores, ids.map { scorer.score($0) })
        }
    }

    /// The f32 inner product in C gives the Swift kernel's bits exactly (no FMA, same lanes and reduction), at
    /// dimensions that hit the 32-wide, 16-wide and scalar tails: graphs and scores do not depend on which ran.
    @Test func avx2InnerProductF32IsBitIdenticalToSwift() throws {
        guard let table = Self.avx2Kernels() else { return }
        var rng = SeededGenerator(seed: 21)
        for dimension in [1, 5, 15, 16, 17, 31, 32, 33, 48, 64, 100, 128] {
            let rows = (0..<40).map { _ in (0..<dimension).map { _ in rng.nextGaussian() * 3 } }
            let query = (0..<dimension).map { _ in rng.nextGaussian() }
            let (batch, single) = try Self.batchAndSingle(
                InnerProductKernel<F32Elements>.self, rows: rows, query: query, type: .f32, batch: table.ip_f32)
            #expect(batch.map(\.bitPattern) == single.map(\.bitPattern), "dimension \(dimension)")
        }
    }

    /// The i8 inner product in C (fused multiply-add) against the Swift kernel (no FMA in debug builds): equal to
    /// rounding, and both within the reference tolerance of the decoded rows.
    @Test func avx2InnerProductI8MatchesSwift() throws {
        guard let table = Self.avx2Kernels() else { return }
        var rng = SeededGenerator(seed: 22)
        for dimension in [1, 5, 16, 31, 32, 48, 64, 100] {
            let rows = (0..<40).map { _ in (0..<dimension).map { _ in rng.nextGaussian() * 2 } }
            let query = (0..<dimension).map { _ in rng.nextGaussian() }
            let (batch, single) = try Self.batchAndSingle(
                InnerProductKernel<I8Elements>.self, rows: rows, query: query, type: .i8, batch: table.ip_i8)
            for (b, s) in zip(batch, single) {
                #expect(abs(b - s) <= 1e-5 * max(1, abs(s)), "dimension \(dimension): \(b) vs \(s)")
            }
        }
    }

    /// Without a batch kernel (the portable fallback), `scoreBatch` is the Swift kernel row by row.
    @Test func fallbackBatchIsTheSwiftKernel() throws {
        var rng = SeededGenerator(seed: 23)
        let rows = (0..<30).map { _ in (0..<37).map { _ in rng.nextGaussian() } }
        let query = (0..<37).map { _ in rng.nextGaussian() }
        let (batch, single) = try Self.batchAndSingle(
            InnerProductKernel<F32Elements>.self, rows: rows, query: query, type: .f32, batch: nil)
        #expect(batch.map(\.bitPattern) == single.map(\.bitPattern))
    }

    /// A whole walk over the same graph with the AVX2 kernel and with the Swift fallback: the same rows with the same
    /// score bits, and the same number of evaluations.
    @Test func walkIsIdenticalWithAndWithoutTheCKernel() throws {
        let rows = Fixtures.clusteredRows(count: 1500, dimension: 64, seed: 24)
        let fixture = try IndexFixture(rows: rows, metric: .ip)
        let table = Self.avx2Kernels()
        let queries = Fixtures.queries(count: 20, dimension: 64, seed: 25)
        for query in queries {
            var outcomes: [([Int32], [UInt32], Int)] = []
            for batch in [nil, table?.ip_f32] as [BatchKernel?] {
                let scratch = SearchScratch()
                let prepared = query.withUnsafeBufferPointer { scratch.prepareQuery($0, normalize: false) }
                let matrix = fixture.index.vectors
                var walk = GraphWalk(
                    layout: fixture.index.graph.layout, entry: fixture.index.graph.entryPoint,
                    maxLevel: fixture.index.graph.maxLevel, ef: 40, filter: AcceptAllRows(), scratch: scratch,
                    navigationOnly: true)
                walk.visit(
                    KernelScorer<InnerProductKernel<F32Elements>>(
                        query: prepared, base: matrix.bytes.baseAddress!, stride: matrix.rowStride,
                        dimension: matrix.dimension, batch: batch))
                var hits: [SearchResult] = []
                let scored = scratch.lastScoredCount
                scratch.drainResults(k: 10, into: &hits)
                #expect(hits.count == 10)
                outcomes.append((hits.map(\.row), hits.map(\.score.bitPattern), scored))
            }
            #expect(outcomes[0].0 == outcomes[1].0)
            #expect(outcomes[0].1 == outcomes[1].1)
            #expect(outcomes[0].2 == outcomes[1].2)
        }
    }
}

import TestSupport
import Testing

@testable import Reranking

/// The full DPP's eight-lane kernels must give, lane by lane, the same bits as the one-candidate
/// kernel: lists, residuals and explanations depend on it.
@Suite struct VectorKernelsTests {
    @Test func dot8LanesEqualDotBitForBitForEveryLength() {
        var rng = SeededGenerator(seed: 8)
        for count in 0...70 {
            let rows = (0..<8).map { _ in (0..<count).map { _ in rng.nextGaussian() } }
            let b = (0..<count).map { _ in rng.nextGaussian() }
            var lanes = [Float](repeating: 0, count: max(count, 1) * 8)
            for m in 0..<count {
                for lane in 0..<8 { lanes[m * 8 + lane] = rows[lane][m] }
            }
            let sums = lanes.withUnsafeBufferPointer { l in
                b.withUnsafeBufferPointer { VectorKernels.dot8(lanes: l.baseAddress!, $0.baseAddress!, count: count) }
            }
            for lane in 0..<8 {
                let one = rows[lane].withUnsafeBufferPointer { a in
                    b.withUnsafeBufferPointer { VectorKernels.dot(a.baseAddress!, $0.baseAddress!, count: count) }
                }
                #expect(sums[lane].bitPattern == one.bitPattern, "count \(count), lane \(lane)")
            }
        }
    }

    @Test(arguments: [1, 5, 8, 13, 16, 64])
    func transpose8PutsComponentMOfRowLInLaneL(dimension: Int) {
        var rng = SeededGenerator(seed: UInt64(dimension))
        for rowCount in [1, 3, 8] {
            let rows = (0..<(rowCount * dimension)).map { _ in rng.nextGaussian() }
            var lanes = [Float](repeating: .nan, count: dimension * 8)
            rows.withUnsafeBufferPointer { r in
                lanes.withUnsafeMutableBufferPointer {
                    VectorKernels.transpose8(
                        rows: r.baseAddress!, rowCount: rowCount, dimension: dimension, into: $0.baseAddress!)
                }
            }
            for m in 0..<dimension {
                for lane in 0..<8 {
                    let expected = lane < rowCount ? rows[lane * dimension + m] : 0
                    #expect(lanes[m * 8 + lane] == expected, "rows \(rowCount), m \(m), lane \(lane)")
                }
            }
        }
    }
}

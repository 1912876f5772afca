import TestSupport
import Testing

@testable import VectorIndex

@Suite struct VectorCodecTests {
    @Test func rowStridesAreFourByteMultiples() {
        #expect(VectorCodec.rowStride(dimension: 64, type: .f32) == 256)
        #expect(VectorCodec.rowStride(dimension: 64, type: .f16) == 128)
        #expect(VectorCodec.rowStride(dimension: 63, type: .f16) == 128)
        #expect(VectorCodec.rowStride(dimension: 64, type: .i8) == 68)
        #expect(VectorCodec.rowStride(dimension: 3, type: .i8) == 8)
    }

    @Test(arguments: VectorElementType.allCases)
    func decodeInvertsEncodeWithinTypePrecision(type: VectorElementType) {
        var rng = SeededGenerator(seed: 7)
        for dimension in [1, 3, 17, 64] {
            let row = (0..<dimension).map { _ in rng.nextGaussian() * 3 }
            let bytes = Fixtures.encode([row], as: type)
            var decoded = [Float](repeating: .nan, count: dimension)
            bytes.withUnsafeBytes { raw in
                decoded.withUnsafeMutableBufferPointer {
                    VectorCodec.decode(raw, as: type, dimension: dimension, into: $0)
                }
            }
            let maxAbs = row.map(abs).max()!
            for i in 0..<dimension {
                let tolerance: Float
                switch type {
                case .f32: tolerance = 0
                case .f16: tolerance = abs(row[i]) / 1024
                case .i8: tolerance = maxAbs / 127 / 2 * 1.001
                }
                #expect(abs(decoded[i] - row[i]) <= tolerance, "\(type) dim \(dimension) element \(i)")
            }
        }
    }

    @Test func zeroRowEncodesAsZeroInEveryType() {
        for type in VectorElementType.allCases {
            let bytes = Fixtures.encode([[0, 0, 0, 0, 0]], as: type)
            #expect(bytes.allSatisfy { $0 == 0 }, "\(type)")
        }
    }

    @Test func matrixRejectsShortBuffer() {
        let bytes = [UInt8](repeating: 0, count: 255)
        bytes.withUnsafeBytes { raw in
            _ = #expect(
                throws: VectorIndexError.truncated(section: "vector matrix", neededBytes: 256, availableBytes: 255)
            ) {
                try VectorMatrix(bytes: raw, count: 1, dimension: 64, type: .f32)
            }
        }
    }
}

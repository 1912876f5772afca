import TestSupport
import Testing

@testable import VectorIndex

@Suite struct DistanceKernelTests {
    /// Every (metric, element type) kernel agrees with a Double scalar reference on the *decoded* row, across
    /// dimensions that exercise the 32-wide, 16-wide and scalar tails.
    @Test(arguments: Metric.allCases, VectorElementType.allCases)
    func kernelMatchesScalarReference(metric: Metric, type: VectorElementType) throws {
        var rng = SeededGenerator(seed: 11)
        for dimension in [1, 5, 16, 31, 32, 48, 64, 100] {
            let rows = (0..<8).map { _ in (0..<dimension).map { _ in rng.nextGaussian() * 2 } }
            let query = (0..<dimension).map { _ in rng.nextGaussian() }
            let bytes = Fixtures.encode(rows, as: type)
            try bytes.withUnsafeBytes { raw in
                let matrix = try VectorMatrix(bytes: raw, count: rows.count, dimension: dimension, type: type)
                let scratch = SearchScratch()
                let prepared = query.withUnsafeBufferPointer {
                    scratch.prepareQuery($0, normalize: metric.normalizesQuery)
                }
                var probe = ScoreProbe(rows: rows.count)
                probe.dispatch(metric: metric, matrix: matrix, query: prepared)
                for row in 0..<rows.count {
                    var decoded = [Float](repeating: 0, count: dimension)
                    decoded.withUnsafeMutableBufferPointer { matrix.decodeRow(row, into: $0) }
                    let expected = Fixtures.referenceScore(query, decoded, metric)
                    let tolerance = 1e-4 * max(1, abs(expected))
                    #expect(
                        abs(Double(probe.scores[row]) - expected) <= tolerance,
                        "\(metric) \(type) dim \(dimension) row \(row)")
                }
            }
        }
    }

    @Test func cosineOfZeroRowIsZero() throws {
        let bytes = Fixtures.encode([[0, 0, 0]], as: .f32)
        try bytes.withUnsafeBytes { raw in
            let matrix = try VectorMatrix(bytes: raw, count: 1, dimension: 3, type: .f32)
            let scratch = SearchScratch()
            let prepared = [Float(1), 2, 3].withUnsafeBufferPointer { scratch.prepareQuery($0, normalize: true) }
            var probe = ScoreProbe(rows: 1)
            probe.dispatch(metric: .cosine, matrix: matrix, query: prepared)
            #expect(probe.scores == [0])
        }
    }
}

/// Scores every row through the same dispatch the searches use.
struct ScoreProbe: RowScorerVisitor {
    let rows: Int
    var scores: [Float] = []

    mutating func visit<Scorer: RowScorer>(_ scorer: Scorer) {
        scores = (0..<rows).map { scorer.score(Int32($0)) }
    }
}

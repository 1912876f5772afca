import TestSupport
import Testing

@testable import VectorIndex

@Suite struct HNSWSearchTests {
    static let dimension = 16

    /// Mean recall@10 of the HNSW walk against the exact oracle on clustered, norm-varying data.
    static func meanRecall(_ fixture: IndexFixture, ef: Int, queries: [[Float]]) throws -> Double {
        let scratch = SearchScratch()
        var results: [SearchResult] = []
        var total = 0.0
        for query in queries {
            let path = try query.withUnsafeBufferPointer {
                try fixture.index.search(query: $0, k: 10, ef: ef, scratch: scratch, into: &results)
            }
            #expect(path == .graph)
            #expect(results.count == 10)
            total += Fixtures.recall(
                results, Fixtures.oracle(fixture.rows, query: query, metric: fixture.metric, k: 10))
        }
        return total / Double(queries.count)
    }

    @Test(arguments: Metric.allCases)
    func recallAtTenReachesNinetyFivePercent(metric: Metric) throws {
        let rows = Fixtures.clusteredRows(count: 1200, dimension: Self.dimension, seed: 1)
        let fixture = try IndexFixture(rows: rows, metric: metric)
        let queries = Fixtures.queries(count: 50, dimension: Self.dimension, seed: 2)
        let recall = try Self.meanRecall(fixture, ef: 64, queries: queries)
        #expect(recall >= 0.95, "\(metric) recall \(recall)")
    }

    @Test(arguments: [VectorElementType.f16, .i8])
    func quantisedRowsKeepRecall(type: VectorElementType) throws {
        let rows = Fixtures.clusteredRows(count: 1000, dimension: Self.dimension, seed: 3)
        let fixture = try IndexFixture(rows: rows, metric: .ip, type: type)
        // The oracle runs on the decoded rows, so recall measures the graph, not the quantisation.
        var decoded = rows
        for (i, row) in rows.enumerated() {
            let bytes = Fixtures.encode([row], as: type)
            bytes.withUnsafeBytes { raw in
                decoded[i].withUnsafeMutableBufferPointer {
                    VectorCodec.decode(raw, as: type, dimension: Self.dimension, into: $0)
                }
            }
        }
        let oracleFixtureRows = decoded
        let scratch = SearchScratch()
        var results: [SearchResult] = []
        var total = 0.0
        let queries = Fixtures.queries(count: 40, dimension: Self.dimension, seed: 4)
        for query in queries {
            try query.withUnsafeBufferPointer {
                _ = try fixture.index.search(query: $0, k: 10, ef: 64, scratch: scratch, into: &results)
            }
            total += Fixtures.recall(results, Fixtures.oracle(oracleFixtureRows, query: query, metric: .ip, k: 10))
        }
        #expect(total / Double(queries.count) >= 0.95)
    }

    @Test func resultsAreSortedBestFirstWithExactScores() throws {
        let rows = Fixtures.clusteredRows(count: 800, dimension: Self.dimension, seed: 5)
        let fixture = try IndexFixture(rows: rows, metric: .ip)
        let query = Fixtures.queries(count: 1, dimension: Self.dimension, seed: 6)[0]
        var results: [SearchResult] = []
        try query.withUnsafeBufferPointer {
            _ = try fixture.index.search(query: $0, k: 20, ef: 40, scratch: SearchScratch(), into: &results)
        }
        #expect(results.count == 20)
        for pair in zip(results, results.dropFirst()) { #expect(pair.0.score >= pair.1.score) }
        for hit in results {
            let expected = Fixtures.referenceScore(query, rows[Int(hit.row)], .ip)
            #expect(abs(Double(hit.score) - expected) <= 1e-4 * max(1, abs(expected)))
        }
    }

    @Test func repeatedSearchesWithReusedScratchReturnIdenticalResults() throws {
        let rows = Fixtures.clusteredRows(count: 1000, dimension: Self.dimension, seed: 7)
        let fixture = try IndexFixture(rows: rows, metric: .cosine)
        let queries = Fixtures.queries(count: 20, dimension: Self.dimension, seed: 8)
        let scratch = SearchScratch()
        var first: [[SearchResult]] = []
        var results: [SearchResult] = []
        for query in queries {
            try query.withUnsafeBufferPointer {
                _ = try fixture.index.search(query: $0, k: 10, ef: 32, scratch: scratch, into: &results)
            }
            first.append(results)
        }
        for (i, query) in queries.enumerated() {
            try query.withUnsafeBufferPointer {
                _ = try fixture.index.search(query: $0, k: 10, ef: 32, scratch: SearchScratch(), into: &results)
            }
            #expect(results == first[i])
        }
    }

    @Test func rebuildIsByteIdenticalForAnyThreadCount() throws {
        let rows = Fixtures.clusteredRows(count: 500, dimension: 16, seed: 9)
        let parameters = HNSWParameters(m: 8, efConstruction: 40, seed: 3)
        let one = try IndexFixture(rows: rows, metric: .ip, parameters: parameters, threads: 1)
        let again = try IndexFixture(rows: rows, metric: .ip, parameters: parameters, threads: 1)
        let two = try IndexFixture(rows: rows, metric: .ip, parameters: parameters, threads: 2)
        let three = try IndexFixture(rows: rows, metric: .ip, parameters: parameters, threads: 3)
        #expect(one.payload == again.payload)
        #expect(one.payload == two.payload)
        #expect(one.payload == three.payload)
        let otherSeed = try IndexFixture(
            rows: rows, metric: .ip, parameters: HNSWParameters(m: 8, efConstruction: 40, seed: 4))
        #expect(one.payload != otherSeed.payload)
    }

    @Test func tinyIndexesReturnEveryRow() throws {
        for count in [1, 2, 5] {
            let rows = Fixtures.clusteredRows(count: count, dimension: 8, seed: UInt64(count))
            let fixture = try IndexFixture(rows: rows, metric: .l2)
            var results: [SearchResult] = []
            try rows[0].withUnsafeBufferPointer {
                _ = try fixture.index.search(query: $0, k: 10, ef: 16, scratch: SearchScratch(), into: &results)
            }
            #expect(Set(results.map(\.row)) == Set((0..<Int32(count))))
            #expect(results.first?.row == 0)
        }
    }

    @Test func emptyIndexReturnsNothing() throws {
        let payload = HNSWIndexBuilder.build(
            vectors: try VectorMatrix(
                bytes: UnsafeRawBufferPointer(start: nil, count: 0), count: 0, dimension: 4, type: .f32),
            metric: .ip, parameters: HNSWParameters(), threads: 2, progress: nil)
        try payload.withUnsafeBytes { raw in
            let graph = try HNSWGraph(bytes: raw, rowCount: 0)
            let matrix = try VectorMatrix(
                bytes: UnsafeRawBufferPointer(start: nil, count: 0), count: 0, dimension: 4, type: .f32)
            let index = try HNSWIndex(vectors: matrix, graph: graph)
            var results: [SearchResult] = [SearchResult(row: 1, score: 1)]
            try [Float](repeating: 1, count: 4).withUnsafeBufferPointer {
                _ = try index.search(query: $0, k: 3, ef: 8, scratch: SearchScratch(), into: &results)
            }
            #expect(results.isEmpty)
        }
    }

    @Test func rejectsQueryOfWrongDimension() throws {
        let fixture = try IndexFixture(rows: Fixtures.clusteredRows(count: 50, dimension: 8, seed: 1), metric: .ip)
        var results: [SearchResult] = []
        #expect(throws: VectorIndexError.queryDimensionMismatch(expected: 8, actual: 7)) {
            try [Float](repeating: 1, count: 7).withUnsafeBufferPointer {
                _ = try fixture.index.search(query: $0, k: 3, ef: 8, scratch: SearchScratch(), into: &results)
            }
        }
    }
}

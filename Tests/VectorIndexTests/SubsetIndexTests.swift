import TestSupport
import Testing

@testable import VectorIndex

/// A subset of a clustered matrix's rows (every third, like a category's items), searched through its quantised rows
/// and through its graph, checked against the exact oracle over the same rows.
@Suite struct SubsetIndexTests {
    static let dimension = 16
    static let rows = Fixtures.clusteredRows(count: 3000, dimension: dimension, clusters: 6, seed: 31)
    static let fixture = try! IndexFixture(rows: rows, metric: .ip)
    static let queries = Fixtures.queries(count: 30, dimension: dimension, seed: 32)
    /// Every third row: a subset spread over the whole matrix, like a category's items.
    static let members: [Int32] = stride(from: 1, to: rows.count, by: 3).map(Int32.init)
    static let subset = try! SubsetFixture(members: members, rows: rows)

    /// Owns the subgraph's rows, payload and quantised (`i8`) rows.
    final class SubsetFixture: @unchecked Sendable {
        let inner: IndexFixture
        let rowBuffer: UnsafeMutableBufferPointer<Int32>
        let quantisedBytes: UnsafeMutableRawBufferPointer

        init(members: [Int32], rows: [[Float]]) throws {
            let memberRows = members.map { rows[Int($0)] }
            inner = try IndexFixture(rows: memberRows, metric: .ip)
            rowBuffer = .allocate(capacity: members.count)
            _ = rowBuffer.initialize(from: members)
            let encoded = Fixtures.encode(memberRows, as: .i8)
            quantisedBytes = .allocate(byteCount: encoded.count, alignment: 64)
            quantisedBytes.copyBytes(from: encoded)
        }

        deinit {
            rowBuffer.deallocate()
            quantisedBytes.deallocate()
        }

        /// The subset index; `walk` keeps the graph and lowers the scan limit so that searches walk it.
        func index(matrixRows: Int, walk: Bool) throws -> SubsetIndex {
            let block = try VectorMatrix(
                bytes: UnsafeRawBufferPointer(quantisedBytes), count: rowBuffer.count,
                dimension: inner.rows[0].count, type: .i8)
            return try SubsetIndex(
                rows: UnsafeBufferPointer(rowBuffer), quantised: block, graph: inner.index.graph,
                matrixRows: matrixRows, scanMaxRows: walk ? 0 : QuantisedScan.maxRows)
        }
    }

    static func search(
        _ query: [Float], k: Int, filter: some RowFilter, estimate: Int?, scratch: SearchScratch, walk: Bool = true
    ) throws -> ([SearchResult], SearchPath) {
        let subset = try Self.subset.index(matrixRows: rows.count, walk: walk)
        var results: [SearchResult] = []
        let path = try query.withUnsafeBufferPointer {
            try subset.search(
                query: $0, k: k, ef: 32, filter: filter, estimatedPassCount: estimate, vectors: fixture.index.vectors,
                metric: .ip, scratch: scratch, into: &results)
        }
        return (results, path)
    }

    @Test func walkReturnsOnlyMemberRowsWithHighRecall() throws {
        let member = Set(Self.members)
        let scratch = SearchScratch()
        var total = 0.0
        for query in Self.queries {
            let (results, path) = try Self.search(
                query, k: 10, filter: AcceptAllRows(), estimate: nil, scratch: scratch)
            #expect(path == .graph)
            #expect(results.count == 10)
            #expect(results.allSatisfy { member.contains($0.row) }, "a row outside the subgraph was returned")
            #expect(zip(results, results.dropFirst()).allSatisfy { $0.score >= $1.score })
            let expected = Fixtures.oracle(Self.rows, query: query, metric: .ip, k: 10) { member.contains(Int32($0)) }
            total += Fixtures.recall(results, expected)
        }
        let recall = total / Double(Self.queries.count)
        #expect(recall >= 0.95, "recall \(recall)")
    }

    @Test func walkMatchesAStandaloneIndexOverTheSameRows() throws {
        // The subgraph is the standalone index's graph: walking it through the shared matrix must give the same
        // rows, mapped, with the same scores.
        let scratch = SearchScratch()
        for query in Self.queries.prefix(10) {
            let (results, _) = try Self.search(query, k: 10, filter: AcceptAllRows(), estimate: nil, scratch: scratch)
            var own: [SearchResult] = []
            _ = try query.withUnsafeBufferPointer { (buffer) throws in
                try Self.subset.inner.index.search(
                    query: buffer, k: 10, ef: 32, filter: RowSetFilter(passes: Array(repeating: true, count: 1000)),
                    candidates: .all(estimatedPassCount: nil), scratch: scratch, into: &own)
            }
            #expect(results.map(\.row) == own.map { Self.members[Int($0.row)] })
            #expect(results.map(\.score) == own.map(\.score))
        }
    }

    @Test func quantisedScanRescoresExactlyWithHighRecall() throws {
        let member = Set(Self.members)
        let scratch = SearchScratch()
        var total = 0.0
        for query in Self.queries {
            for k in [10, 100] {
                let (results, path) = try Self.search(
                    query, k: k, filter: AcceptAllRows(), estimate: nil, scratch: scratch, walk: false)
                #expect(path == .quantisedRows)
                #expect(results.count == k)
                #expect(results.allSatisfy { member.contains($0.row) }, "a row outside the subgraph was returned")
                // Re-scored exactly: every score is the f32 score of its row, best first.
                for hit in results {
                    let exact = Fixtures.referenceScore(query, Self.rows[Int(hit.row)], .ip)
                    #expect(abs(Double(hit.score) - exact) <= 1e-4 * max(1, abs(exact)))
                }
                #expect(zip(results, results.dropFirst()).allSatisfy { $0.score >= $1.score })
                let expected = Fixtures.oracle(Self.rows, query: query, metric: .ip, k: k) {
                    member.contains(Int32($0))
                }
                total += Fixtures.recall(results, expected)
            }
        }
        let recall = total / Double(2 * Self.queries.count)
        #expect(recall >= 0.99, "recall \(recall)")
    }

    @Test func quantisedScanHonoursTheFilterAndNeverReturnsFewerThanKWhenKPass() throws {
        let passes = Set(Self.members.enumerated().filter { $0.offset % 7 == 0 }.map(\.element))
        let filter = RowSetFilter(passes: (0..<Self.rows.count).map { passes.contains(Int32($0)) })
        let scratch = SearchScratch()
        for query in Self.queries.prefix(10) {
            let (results, path) = try Self.search(
                query, k: 50, filter: filter, estimate: passes.count, scratch: scratch, walk: false)
            #expect(path == .quantisedRows)
            #expect(results.count == 50)
            #expect(results.allSatisfy { passes.contains($0.row) }, "a failing row was returned")
        }
        // Fewer rows pass than asked for: all of them, exactly.
        let few = Set(Self.members.prefix(7))
        let fewFilter = RowSetFilter(passes: (0..<Self.rows.count).map { few.contains(Int32($0)) })
        let (results, _) = try Self.search(
            Self.queries[0], k: 10, filter: fewFilter, estimate: nil, scratch: scratch, walk: false)
        #expect(Set(results.map(\.row)) == few)
    }

    @Test func filterInsideTheSubgraphIsHonouredAndScansWhenSelective() throws {
        // 1 in 20 member rows pass: the plan scans the subgraph's rows exactly.
        let passes = Set(Self.members.enumerated().filter { $0.offset % 20 == 0 }.map(\.element))
        let filter = RowSetFilter(passes: (0..<Self.rows.count).map { passes.contains(Int32($0)) })
        let scratch = SearchScratch()
        for query in Self.queries.prefix(10) {
            let (results, path) = try Self.search(
                query, k: 10, filter: filter, estimate: passes.count, scratch: scratch)
            #expect(path == .exactRows)
            let expected = Fixtures.oracle(Self.rows, query: query, metric: .ip, k: 10) { passes.contains(Int32($0)) }
            #expect(results.map { Int($0.row) } == expected)
        }
    }

    @Test func neverFewerThanKWhenKPass() throws {
        // The estimate says everything passes, but only 7 rows do: the walk finds fewer than k and the scan
        // of the subgraph's rows completes the answer.
        let passes = Set(Self.members.prefix(7))
        let filter = RowSetFilter(passes: (0..<Self.rows.count).map { passes.contains(Int32($0)) })
        let (results, path) = try Self.search(
            Self.queries[0], k: 10, filter: filter, estimate: Self.members.count, scratch: SearchScratch())
        #expect(path == .graphThenExact)
        #expect(Set(results.map(\.row)) == passes)
    }

    @Test func aSubsetWithoutAGraphIsAlwaysScanned() throws {
        let walkable = try Self.subset.index(matrixRows: Self.rows.count, walk: true)
        let scanOnly = try SubsetIndex(
            rows: walkable.rows, quantised: walkable.quantised, graph: nil, matrixRows: Self.rows.count, scanMaxRows: 0)
        var results: [SearchResult] = []
        let path = try Self.queries[0].withUnsafeBufferPointer {
            try scanOnly.search(
                query: $0, k: 10, ef: 32, filter: AcceptAllRows(), estimatedPassCount: nil,
                vectors: Self.fixture.index.vectors, metric: .ip, scratch: SearchScratch(), into: &results)
        }
        #expect(path == .quantisedRows)
        let member = Set(Self.members)
        let expected = Fixtures.oracle(Self.rows, query: Self.queries[0], metric: .ip, k: 10) {
            member.contains(Int32($0))
        }
        #expect(results.map { Int($0.row) } == expected)
    }

    @Test func rejectsMismatchedMatrixOrMetric() throws {
        let subset = try Self.subset.index(matrixRows: Self.rows.count, walk: true)
        var results: [SearchResult] = []
        try Self.queries[0].withUnsafeBufferPointer { (query) throws in
            #expect(throws: VectorIndexError.self) {
                try subset.search(
                    query: query, k: 10, ef: 32, filter: AcceptAllRows(), estimatedPassCount: nil,
                    vectors: Self.subset.inner.index.vectors, metric: .ip, scratch: SearchScratch(), into: &results)
            }
            #expect(throws: VectorIndexError.self) {
                try subset.search(
                    query: query, k: 10, ef: 32, filter: AcceptAllRows(), estimatedPassCount: nil,
                    vectors: Self.fixture.index.vectors, metric: .l2, scratch: SearchScratch(), into: &results)
            }
        }
    }

    @Test func rejectsRowsOutsideTheMatrixOrOutOfOrder() throws {
        let valid = try Self.subset.index(matrixRows: Self.rows.count, walk: true)
        let graph = valid.graph
        let block = valid.quantised
        let count = Self.members.count
        var rows = Self.members
        _ = rows.withUnsafeBufferPointer { buffer in
            #expect(throws: VectorIndexError.self) {
                try SubsetIndex(rows: buffer, quantised: block, graph: graph, matrixRows: Int(Self.members.last!))
            }
        }
        rows.swapAt(3, 4)
        _ = rows.withUnsafeBufferPointer { buffer in
            #expect(throws: VectorIndexError.self) {
                try SubsetIndex(rows: buffer, quantised: block, graph: graph, matrixRows: 3000)
            }
        }
        rows = Array(Self.members.prefix(count - 1))
        rows.withUnsafeBufferPointer { buffer in
            #expect(
                throws: VectorIndexError.graphMismatch(reason: "subset graph has \(count) nodes for \(count - 1) rows")
            ) { try SubsetIndex(rows: buffer, quantised: block, graph: graph, matrixRows: 3000) }
            #expect(throws: VectorIndexError.self) {
                try SubsetIndex(rows: buffer, quantised: block, graph: nil, matrixRows: 3000)
            }
        }
    }
}

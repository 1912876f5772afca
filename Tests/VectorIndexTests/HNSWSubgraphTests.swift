import Testing
import TestSupport
@testable import VectorIndex

/// A subgraph over one cluster's rows of a clustered index, checked against the exact oracle over the same rows.
@Suite struct HNSWSubgraphTests {
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

        func subgraph(matrixRows: Int, quantised: Bool = false) throws -> HNSWSubgraph {
            let block = try VectorMatrix(
                bytes: UnsafeRawBufferPointer(quantisedBytes), count: rowBuffer.count,
                dimension: inner.rows[0].count, type: .i8)
            return try HNSWSubgraph(
                rows: UnsafeBufferPointer(rowBuffer), graph: inner.index.graph, quantised: quantised ? block : nil,
                matrixRows: matrixRows)
        }
    }

    static func search(
        _ query: [Float], k: Int, filter: some RowFilter, estimate: Int?, scratch: SearchScratch,
        quantised: Bool = false
    ) throws -> ([SearchResult], SearchPath) {
        let subgraph = try subset.subgraph(matrixRows: rows.count, quantised: quantised)
        var results: [SearchResult] = []
        let path = try query.withUnsafeBufferPointer {
            try fixture.index.search(
                query: $0, k: k, ef: 32, filter: filter, within: subgraph, estimatedPassCount: estimate,
                scratch: scratch, into: &results)
        }
        return (results, path)
    }

    @Test func walkReturnsOnlyMemberRowsWithHighRecall() throws {
        let member = Set(Self.members)
        let scratch = SearchScratch()
        var total = 0.0
        for query in Self.queries {
            let (results, path) = try Self.search(query, k: 10, filter: AcceptAllRows(), estimate: nil, scratch: scratch)
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
                    query, k: k, filter: AcceptAllRows(), estimate: nil, scratch: scratch, quantised: true)
                #expect(path == .quantisedRows)
                #expect(results.count == k)
                #expect(results.allSatisfy { member.contains($0.row) }, "a row outside the subgraph was returned")
                // Re-scored exactly: every score is the f32 score of its row, best first.
                for hit in results {
                    let exact = Fixtures.referenceScore(query, Self.rows[Int(hit.row)], .ip)
                    #expect(abs(Double(hit.score) - exact) <= 1e-4 * max(1, abs(exact)))
                }
                #expect(zip(results, results.dropFirst()).allSatisfy { $0.score >= $1.score })
                let expected = Fixtures.oracle(Self.rows, query: query, metric: .ip, k: k) { member.contains(Int32($0)) }
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
                query, k: 50, filter: filter, estimate: passes.count, scratch: scratch, quantised: true)
            #expect(path == .quantisedRows)
            #expect(results.count == 50)
            #expect(results.allSatisfy { passes.contains($0.row) }, "a failing row was returned")
        }
        // Fewer rows pass than asked for: all of them, exactly.
        let few = Set(Self.members.prefix(7))
        let fewFilter = RowSetFilter(passes: (0..<Self.rows.count).map { few.contains(Int32($0)) })
        let (results, _) = try Self.search(
            Self.queries[0], k: 10, filter: fewFilter, estimate: nil, scratch: scratch, quantised: true)
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

    @Test func rejectsRowsOutsideTheMatrixOrOutOfOrder() throws {
        let inner = Self.subset.inner.index.graph
        let count = Self.members.count
        var rows = Self.members
        _ = rows.withUnsafeBufferPointer { buffer in
            #expect(throws: VectorIndexError.self) {
                try HNSWSubgraph(rows: buffer, graph: inner, matrixRows: Int(Self.members.last!))
            }
        }
        rows.swapAt(3, 4)
        _ = rows.withUnsafeBufferPointer { buffer in
            #expect(throws: VectorIndexError.self) { try HNSWSubgraph(rows: buffer, graph: inner, matrixRows: 3000) }
        }
        rows = Array(Self.members.prefix(count - 1))
        _ = rows.withUnsafeBufferPointer { buffer in
            #expect(throws: VectorIndexError.graphMismatch(reason: "subgraph has \(count) nodes for \(count - 1) rows"))
            { try HNSWSubgraph(rows: buffer, graph: inner, matrixRows: 3000) }
        }
    }
}

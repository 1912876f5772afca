import TestSupport
import Testing

@testable import VectorIndex

/// A clustered matrix partitioned by k-means (`PartitionBuilder`) and searched through its partitions, checked
/// against the exact oracle.
@Suite struct PartitionIndexTests {
    static let dimension = 16
    static let rows = Fixtures.clusteredRows(count: 4000, dimension: dimension, clusters: 12, seed: 41)
    static let queries = Fixtures.queries(count: 30, dimension: dimension, seed: 42)
    static let fixture = try! PartitionFixture(rows: rows, partitions: 40)

    /// Owns the matrix, the partitions' pieces and the index over them.
    final class PartitionFixture: @unchecked Sendable {
        let vectorBytes: UnsafeMutableRawBufferPointer
        let matrix: VectorMatrix
        let built: PartitionBuilder.Result
        let centroidBytes: UnsafeMutableRawBufferPointer
        let starts: UnsafeMutableBufferPointer<Int32>
        let members: UnsafeMutableBufferPointer<Int32>
        let quantisedBytes: UnsafeMutableRawBufferPointer

        init(rows: [[Float]], partitions: Int) throws {
            let encoded = Fixtures.encode(rows, as: .f32)
            vectorBytes = .allocate(byteCount: encoded.count, alignment: 64)
            vectorBytes.copyBytes(from: encoded)
            matrix = try VectorMatrix(
                bytes: UnsafeRawBufferPointer(vectorBytes), count: rows.count, dimension: rows[0].count, type: .f32)
            built = PartitionBuilder.build(vectors: matrix, partitions: partitions, seed: 7, threads: 2)
            let centroidCopy = UnsafeMutableRawBufferPointer.allocate(
                byteCount: 4 * built.centroids.count, alignment: 64)
            built.centroids.withUnsafeBytes { centroidCopy.copyMemory(from: $0) }
            centroidBytes = centroidCopy
            // Group the rows by partition, ascending within each (what the snapshot builder writes).
            var counts = [Int32](repeating: 0, count: built.partitions + 1)
            for partition in built.assignment { counts[Int(partition) + 1] += 1 }
            for p in 0..<built.partitions { counts[p + 1] += counts[p] }
            starts = .allocate(capacity: counts.count)
            _ = starts.initialize(from: counts)
            var next = counts
            var grouped = [Int32](repeating: 0, count: rows.count)
            for (row, partition) in built.assignment.enumerated() {
                grouped[Int(next[Int(partition)])] = Int32(row)
                next[Int(partition)] += 1
            }
            members = .allocate(capacity: grouped.count)
            _ = members.initialize(from: grouped)
            let quantised = Fixtures.encode(grouped.map { rows[Int($0)] }, as: .i8)
            quantisedBytes = .allocate(byteCount: quantised.count, alignment: 64)
            quantisedBytes.copyBytes(from: quantised)
        }

        deinit {
            vectorBytes.deallocate()
            centroidBytes.deallocate()
            starts.deallocate()
            members.deallocate()
            quantisedBytes.deallocate()
        }

        func index(starts override: [Int32]? = nil) throws -> PartitionIndex {
            let dimension = matrix.dimension
            let startBuffer = override.map { values in
                let buffer = UnsafeMutableBufferPointer<Int32>.allocate(capacity: values.count)
                _ = buffer.initialize(from: values)
                return UnsafeBufferPointer(buffer)  // leaked by the rejection test only
            }
            return try PartitionIndex(
                centroids: try VectorMatrix(
                    bytes: UnsafeRawBufferPointer(centroidBytes), count: built.partitions, dimension: dimension,
                    type: .f32),
                starts: startBuffer ?? UnsafeBufferPointer(starts), rows: UnsafeBufferPointer(members),
                quantised: try VectorMatrix(
                    bytes: UnsafeRawBufferPointer(quantisedBytes), count: members.count, dimension: dimension,
                    type: .i8),
                matrixRows: matrix.count)
        }
    }

    static func search(
        _ query: [Float], k: Int, probeRows: Int, filter: some RowFilter = AcceptAllRows(), scratch: SearchScratch
    ) throws -> [SearchResult] {
        let index = try fixture.index()
        var results: [SearchResult] = []
        let path = try query.withUnsafeBufferPointer {
            try index.search(
                query: $0, k: k, probeRows: probeRows, filter: filter, vectors: fixture.matrix, metric: .ip,
                scratch: scratch, into: &results)
        }
        #expect(path == .partitions)
        return results
    }

    @Test func everyRowIsInExactlyOnePartitionAndTheBuildIsDeterministic() throws {
        let built = Self.fixture.built
        #expect(built.partitions == 40)
        #expect(built.assignment.count == Self.rows.count)
        #expect(Set(Array(Self.fixture.members)).count == Self.rows.count)
        let again = PartitionBuilder.build(vectors: Self.fixture.matrix, partitions: 40, seed: 7, threads: 1)
        #expect(again.centroids == built.centroids && again.assignment == built.assignment)
    }

    @Test func probingEveryRowFindsTheExactTopK() throws {
        let scratch = SearchScratch()
        for query in Self.queries {
            let found = try Self.search(query, k: 20, probeRows: Self.rows.count, scratch: scratch)
            let expected = Fixtures.oracle(Self.rows, query: query, metric: .ip, k: 20)
            #expect(found.map { Int($0.row) } == expected)
        }
    }

    @Test func aPartialProbeKeepsHighRecallAtADeepPool() throws {
        let scratch = SearchScratch()
        var recall = 0.0
        var scored = 0
        for query in Self.queries {
            let found = try Self.search(query, k: 100, probeRows: 800, scratch: scratch)
            recall += Fixtures.recall(found, Fixtures.oracle(Self.rows, query: query, metric: .ip, k: 100))
            scored += scratch.lastScoredCount
            #expect(found.count == 100)
            #expect(zip(found, found.dropFirst()).allSatisfy { $0.score >= $1.score })
        }
        recall /= Double(Self.queries.count)
        #expect(recall >= 0.9, "recall@100 \(recall)")
        #expect(scored / Self.queries.count < Self.rows.count / 2, "scored \(scored / Self.queries.count) rows a query")
    }

    @Test func theFilterHoldsAndFewerPassingRowsThanKAreAllReturned() throws {
        let scratch = SearchScratch()
        let passing = Set((0..<Self.rows.count).filter { $0 % 97 == 0 }.map(Int32.init))
        let filter = SetFilter(rows: passing)
        for query in Self.queries.prefix(5) {
            let found = try Self.search(query, k: 200, probeRows: 1000, filter: filter, scratch: scratch)
            #expect(Set(found.map(\.row)) == passing)
            let expected = Fixtures.oracle(Self.rows, query: query, metric: .ip, k: 200) { passing.contains(Int32($0)) }
            #expect(found.map { Int($0.row) } == expected)
        }
    }

    @Test func rejectsStartsThatDoNotCoverTheRows() throws {
        var starts = Array(Self.fixture.starts)
        starts[starts.count - 1] -= 1
        #expect(throws: VectorIndexError.self) { _ = try Self.fixture.index(starts: starts) }
        starts = Array(Self.fixture.starts)
        starts.swapAt(1, 2)
        if starts[1] != starts[2] {
            #expect(throws: VectorIndexError.self) { _ = try Self.fixture.index(starts: starts) }
        }
    }
}

/// Accepts the rows of a set.
private struct SetFilter: RowFilter {
    let rows: Set<Int32>
    func accepts(_ row: Int32) -> Bool { rows.contains(row) }
}

import TestSupport
import Testing

@testable import VectorIndex

/// The heap-free selection of a quantised scan's candidates, checked against a full sort.
@Suite struct CandidateSelectionTests {
    /// The search order: score descending, then row ascending.
    static func sorted(_ elements: [ScoredRow]) -> [ScoredRow] {
        elements.sorted { BestOnTop.above($0, $1) }
    }

    @Test(arguments: [1, 2, 7, 100, 999])
    func moveBestToFrontPutsExactlyTheBestFirstWithTheLastOfThemInPlace(best: Int) {
        var generator = SeededGenerator(seed: UInt64(best))
        for round in 0..<20 {
            // Few distinct scores in half the rounds, so ties on score (broken by row) are common.
            let distinct = round % 2 == 0 ? 5 : 1_000_000
            var elements = (0..<999).map { row in
                ScoredRow(score: Float(Int(generator.next() % UInt64(distinct))), row: Int32(row))
            }
            elements.shuffle(using: &generator)
            let expected = Self.sorted(elements)
            elements.withUnsafeMutableBufferPointer {
                CandidateSelection<AcceptAllRows>.moveBestToFront($0.baseAddress!, count: $0.count, best: best)
            }
            #expect(Set(elements.prefix(best).map(\.row)) == Set(expected.prefix(best).map(\.row)))
            #expect(elements[best - 1].row == expected[best - 1].row)
            #expect(elements.map(\.row).sorted() == Array(0..<999))
        }
    }

    @Test func aScanKeepsTheBestRowsAcrossManyCompactions() throws {
        // Scores rise with the row, so every row beats the threshold and the buffer compacts over and over.
        let rows = (0..<5_000).map { [Float($0) / 5_000, 1] }
        let fixture = try IndexFixture(rows: rows, metric: .ip)
        let scratch = SearchScratch()
        var selection = CandidateSelection(rowCount: rows.count, keep: 37, filter: AcceptAllRows(), scratch: scratch)
        let query: [Float] = [1, 0]
        query.withUnsafeBufferPointer { buffer in
            let prepared = scratch.prepareQuery(buffer, normalize: false)
            selection.dispatch(metric: .ip, matrix: fixture.index.vectors, query: prepared)
        }
        #expect(Set(selection.chosen.map(\.row)) == Set((4_963..<5_000).map(Int32.init)))
        #expect(scratch.lastScoredCount == 5_000)
    }

    @Test func fewerRowsThanKeptAreAllChosen() throws {
        let rows = (0..<10).map { [Float($0), 1] }
        let fixture = try IndexFixture(rows: rows, metric: .ip)
        let scratch = SearchScratch()
        var selection = CandidateSelection(rowCount: rows.count, keep: 37, filter: AcceptAllRows(), scratch: scratch)
        let query: [Float] = [1, 0]
        query.withUnsafeBufferPointer { buffer in
            selection.dispatch(
                metric: .ip, matrix: fixture.index.vectors, query: scratch.prepareQuery(buffer, normalize: false))
        }
        #expect(Set(selection.chosen.map(\.row)) == Set(0..<10))
    }
}

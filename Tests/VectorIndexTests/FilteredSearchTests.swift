import TestSupport
import Testing

@testable import VectorIndex

/// Accepts rows whose bit is set.
struct RowSetFilter: RowFilter {
    let passes: [Bool]
    func accepts(_ row: Int32) -> Bool { passes[Int(row)] }
}

@Suite struct FilteredSearchTests {
    static let dimension = 16
    static let rows = Fixtures.clusteredRows(count: 2000, dimension: dimension, seed: 21)
    static let fixture = try! IndexFixture(rows: rows, metric: .ip)
    static let queries = Fixtures.queries(count: 25, dimension: dimension, seed: 22)

    /// A filter that passes everything follows the whole hybrid lists (angular links included); the unfiltered walk
    /// follows only the inner-product prefix, so it scores fewer rows for the same ef.
    @Test func unfilteredWalkFollowsOnlyTheInnerProductPrefix() throws {
        let everything = RowSetFilter(passes: [Bool](repeating: true, count: Self.rows.count))
        let scratch = SearchScratch()
        var results: [SearchResult] = []
        var unfiltered = 0, filtered = 0
        for query in Self.queries {
            try query.withUnsafeBufferPointer { q in
                let plain = try Self.fixture.index.search(query: q, k: 10, ef: 32, scratch: scratch, into: &results)
                unfiltered += scratch.lastScoredCount
                let walked = try Self.fixture.index.search(
                    query: q, k: 10, ef: 32, filter: everything, scratch: scratch, into: &results)
                filtered += scratch.lastScoredCount
                #expect(plain == .graph && walked == .graph)
            }
        }
        #expect(unfiltered < filtered)
    }

    /// Random pass set with `passCount` rows (seeded).
    static func passSet(_ passCount: Int, seed: UInt64) -> [Bool] {
        var rng = SeededGenerator(seed: seed)
        var passes = [Bool](repeating: false, count: rows.count)
        var chosen = 0
        while chosen < passCount {
            let row = Int(rng.next() % UInt64(rows.count))
            if !passes[row] {
                passes[row] = true
                chosen += 1
            }
        }
        return passes
    }

    /// Runs every query through `search`, checking the invariants; returns mean recall against the filtered oracle.
    static func check(passes: [Bool], candidates: (UnsafeBufferPointer<Int32>) -> CandidateRows) throws -> Double {
        let filter = RowSetFilter(passes: passes)
        let passing = passes.indices.filter { passes[$0] }.map(Int32.init)
        let scratch = SearchScratch()
        var results: [SearchResult] = []
        var total = 0.0
        for query in queries {
            try passing.withUnsafeBufferPointer { list in
                try query.withUnsafeBufferPointer {
                    _ = try fixture.index.search(
                        query: $0, k: 10, ef: 64, filter: filter, candidates: candidates(list),
                        scratch: scratch, into: &results)
                }
            }
            #expect(results.allSatisfy { passes[Int($0.row)] }, "a failing row was returned")
            #expect(results.count == min(10, passing.count))
            let expected = Fixtures.oracle(rows, query: query, metric: .ip, k: 10) { passes[$0] }
            total += Fixtures.recall(results, expected)
        }
        return total / Double(queries.count)
    }

    @Test(arguments: [1000, 200, 20, 2, 1])
    func filteredWalkWithoutEstimateStaysCorrect(passCount: Int) throws {
        let recall = try Self.check(passes: Self.passSet(passCount, seed: UInt64(passCount))) { _ in
            .all(estimatedPassCount: nil)
        }
        #expect(recall >= 0.95, "pass count \(passCount): recall \(recall)")
    }

    @Test(arguments: [1000, 200, 20, 2, 1])
    func filteredSearchWithEstimateOrRowListStaysCorrect(passCount: Int) throws {
        let passes = Self.passSet(passCount, seed: UInt64(passCount) + 100)
        let estimated = try Self.check(passes: passes) { _ in .all(estimatedPassCount: passCount) }
        let listed = try Self.check(passes: passes) { .rows($0) }
        #expect(estimated >= 0.95, "estimate, pass count \(passCount): recall \(estimated)")
        #expect(listed >= 0.95, "row list, pass count \(passCount): recall \(listed)")
    }

    /// A filter passing nearly every row, with its count known: the plan walks (the scan would score 1 900 rows),
    /// and the walk keeps the guarantees.
    @Test func broadFilterWithKnownCountWalks() throws {
        let passes = Self.passSet(1900, seed: 31)
        let scratch = SearchScratch()
        var results: [SearchResult] = []
        let recall = try Self.check(passes: passes) { .rows($0) }
        let path = try Self.queries[0].withUnsafeBufferPointer {
            try Self.fixture.index.search(
                query: $0, k: 10, ef: 64, filter: RowSetFilter(passes: passes),
                candidates: .all(estimatedPassCount: 1900), scratch: scratch, into: &results)
        }
        #expect(path == .graph)
        #expect(recall >= 0.95, "recall \(recall)")
    }

    /// An estimate that claims every row passes when one does (a filter the estimate misjudges): the walk explores
    /// the whole graph without filling its beam, gives up once it has spent half the scan's cost, and the scan finds
    /// the row. Without the budget it would score every row twice.
    @Test func walkMisledByTheEstimateGivesUpForTheScan() throws {
        let passes = Self.passSet(1, seed: 77)
        let rows = Self.rows.count
        let plan = Self.fixture.index.plan(passCount: rows, listed: false, ef: 64, k: 10)
        let budget = try #require(plan.walk?.budget)
        let scratch = SearchScratch()
        var results: [SearchResult] = []
        let path = try Self.queries[2].withUnsafeBufferPointer {
            try Self.fixture.index.search(
                query: $0, k: 10, ef: 64, filter: RowSetFilter(passes: passes),
                candidates: .all(estimatedPassCount: rows), scratch: scratch, into: &results)
        }
        #expect(path == .graphThenExact)
        #expect(results.map { Int($0.row) } == passes.indices.filter { passes[$0] })
        // The walk stops at the first expansion past the budget (one level-0 list: at most 2M more rows).
        #expect(scratch.lastScoredCount <= rows + budget + 2 * Self.fixture.index.graph.m + 1)
        #expect(scratch.lastScoredCount > rows)
    }

    /// The plan's numbers at 1M rows, M = 16, ef = 64 (docs/INDEX.md quotes them).
    @Test func filteredSearchPlanWidensTheBeamAndPicksTheCheaperPath() {
        func plan(_ pass: Int, rows: Int = 1_000_000, listed: Bool = true, k: Int = 10) -> FilteredSearchPlan {
            FilteredSearchPlan(rows: rows, passCount: pass, listed: listed, ef: 64, k: k, m: 16)
        }
        // Nothing filtered out: ef as given; the budget is half the scan.
        #expect(plan(1_000_000).walk == FilteredSearchPlan.Walk(beam: 64, budget: 500_000))
        // 30%: the beam is ef / 0.3 rounded up; the walk (214 × 32 / 0.3 ≈ 22.8k) beats scanning 300k rows.
        #expect(plan(300_000).walk == FilteredSearchPlan.Walk(beam: 214, budget: 150_000))
        // Without a row list the scan also checks the filter on every row (1/16 each).
        #expect(plan(300_000, listed: false).walk?.budget == (300_000 + 62_500) / 2)
        // 10%: the widened walk (640 × 32 / 0.1 = 204.8k) costs more than scanning the 100k passing rows.
        #expect(plan(100_000).walk == nil)
        #expect(plan(0).walk == nil)
        // The beam never drops below k.
        #expect(plan(300_000, k: 500).walk?.beam == 500)
        // The widening is capped: 4% of 100M widens 20×, not 25×.
        #expect(plan(4_000_000, rows: 100_000_000).walk?.beam == 1280)
    }

    @Test func verySelectiveFilterWithEstimateScansExactly() throws {
        let passes = Self.passSet(3, seed: 5)
        let scratch = SearchScratch()
        var results: [SearchResult] = []
        let path = try Self.queries[0].withUnsafeBufferPointer {
            try Self.fixture.index.search(
                query: $0, k: 10, ef: 64, filter: RowSetFilter(passes: passes),
                candidates: .all(estimatedPassCount: 3), scratch: scratch, into: &results)
        }
        #expect(path == .exactScan)
        #expect(results.count == 3)
    }

    @Test func noPassingRowGivesEmptyResult() throws {
        let passes = [Bool](repeating: false, count: Self.rows.count)
        var results: [SearchResult] = [SearchResult(row: 0, score: 0)]
        try Self.queries[0].withUnsafeBufferPointer {
            _ = try Self.fixture.index.search(
                query: $0, k: 10, ef: 64, filter: RowSetFilter(passes: passes),
                scratch: SearchScratch(), into: &results)
        }
        #expect(results.isEmpty)
    }

    @Test func exactSearchOverRowListMatchesOracle() throws {
        let passes = Self.passSet(200, seed: 9)
        let list = passes.indices.filter { passes[$0] }.map(Int32.init)
        var results: [SearchResult] = []
        try list.withUnsafeBufferPointer { rows in
            try Self.queries[1].withUnsafeBufferPointer {
                try ExactSearch.search(
                    vectors: Self.fixture.index.vectors, metric: .ip, query: $0, k: 10,
                    filter: AcceptAllRows(), rows: rows, scratch: SearchScratch(), into: &results)
            }
        }
        #expect(
            results.map { Int($0.row) }
                == Fixtures.oracle(Self.rows, query: Self.queries[1], metric: .ip, k: 10) { passes[$0] })
    }

    /// The all-rows scan asks the filter for the passing rows block by block (`RowFilter.acceptedRows`, 512 rows a
    /// block; 2 000 rows leave a partial last block): the same hits as the oracle, for the default implementation
    /// and through the type-erased wrapper.
    @Test func exactScanWithFilterMatchesOracle() throws {
        let passes = Self.passSet(300, seed: 12)
        var results: [SearchResult] = []
        let scratch = SearchScratch()
        for query in Self.queries.prefix(5) {
            try query.withUnsafeBufferPointer {
                try ExactSearch.search(
                    vectors: Self.fixture.index.vectors, metric: .ip, query: $0, k: 10,
                    filter: RowSetFilter(passes: passes), scratch: scratch, into: &results)
            }
            #expect(
                results.map { Int($0.row) }
                    == Fixtures.oracle(Self.rows, query: query, metric: .ip, k: 10) { passes[$0] })
        }
        let output = UnsafeMutablePointer<Int32>.allocate(capacity: 700)
        defer { output.deallocate() }
        let count = AnyRowFilter(RowSetFilter(passes: passes)).acceptedRows(1300..<2000, into: output)
        #expect(
            Array(UnsafeBufferPointer(start: output, count: count))
                == (1300..<2000).filter { passes[$0] }.map(Int32.init))
    }

    @Test func exactSearchRejectsRowOutsideMatrix() throws {
        var results: [SearchResult] = []
        #expect(throws: VectorIndexError.invalidArgument(name: "rows[]", value: 2000, reason: "row out of range")) {
            try [Int32(2000)].withUnsafeBufferPointer { rows in
                try Self.queries[1].withUnsafeBufferPointer {
                    try ExactSearch.search(
                        vectors: Self.fixture.index.vectors, metric: .ip, query: $0, k: 10,
                        filter: AcceptAllRows(), rows: rows, scratch: SearchScratch(), into: &results)
                }
            }
        }
    }
}

/// `ExcludedRowSet` (items withdrawn after the index was built): walked like an unfiltered search, never returning
/// an excluded row, with the recall of the filtered oracle.
@Suite struct ExcludedRowSetTests {
    @Test(arguments: [20, 200, 1000])
    func excludedRowsAreNeverReturnedAndRecallHolds(excludedCount: Int) throws {
        let rows = FilteredSearchTests.rows
        let passes = FilteredSearchTests.passSet(rows.count - excludedCount, seed: UInt64(excludedCount) + 7)
        var bits = [UInt64](repeating: 0, count: (rows.count + 63) / 64)
        for row in passes.indices where !passes[row] { bits[row >> 6] |= 1 << UInt64(row & 63) }
        let scratch = SearchScratch()
        var results: [SearchResult] = []
        var total = 0.0
        var scoredExcluded = 0
        var scoredUnfiltered = 0
        for query in FilteredSearchTests.queries {
            try bits.withUnsafeBufferPointer { bits in
                try query.withUnsafeBufferPointer { q in
                    let path = try FilteredSearchTests.fixture.index.search(
                        query: q, k: 10, ef: 64, filter: ExcludedRowSet(bits: bits),
                        candidates: .all(estimatedPassCount: rows.count - excludedCount), scratch: scratch,
                        into: &results)
                    if path == .graph { scoredExcluded += scratch.lastScoredCount }
                    #expect(results.allSatisfy { passes[Int($0.row)] }, "an excluded row was returned")
                    #expect(results.count == 10)
                    let expected = Fixtures.oracle(rows, query: query, metric: .ip, k: 10) { passes[$0] }
                    total += Fixtures.recall(results, expected)
                    var plain: [SearchResult] = []
                    let index = FilteredSearchTests.fixture.index
                    let plainPath = try index.search(query: q, k: 10, ef: 64, scratch: scratch, into: &plain)
                    if plainPath == .graph, path == .graph { scoredUnfiltered += scratch.lastScoredCount }
                }
            }
        }
        let recall = total / Double(FilteredSearchTests.queries.count)
        #expect(recall >= 0.95, "\(excludedCount) excluded: recall \(recall)")
        if excludedCount == 20 {
            // A few withdrawn rows: the walk follows the inner-product prefix like an unfiltered one, so it scores
            // about as many rows (the filtered walk's angular links would add more).
            #expect(
                Double(scoredExcluded) <= 1.2 * Double(scoredUnfiltered), "\(scoredExcluded) vs \(scoredUnfiltered)")
        }
    }
}

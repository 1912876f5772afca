public import MappedStorage

/// Precomputed item lists for cold start and filtered retrieval, read in place.
///
/// Layout (file kind `popularity`; parameters: row count, category count, categorised row count):
/// 0. `global` u32 × rowCount — every item row, by popularity descending, ties by row ascending
/// 1. `categoryStarts` u64 × (categoryCount + 1) — category c's rows are entries `starts[c] ..< starts[c+1]`
///    of sections 2 and 3 (so `starts[c+1] − starts[c]` is the category's item count)
/// 2. `byPopularity` u32 × categorised — per category, rows by popularity descending (ties by row)
/// 3. `byRow` u32 × categorised — per category, rows ascending (posting lists for exact filtered search)
///
/// `categoryStarts` is small and checked at open (monotone, ends at the entry count); row values
/// are checked by `Snapshot.verifyStructure()`.
public struct PopularityLists: @unchecked Sendable {
    /// All item rows, most popular first.
    public let global: Column<UInt32>
    private let starts: Column<UInt64>
    private let byPopularity: Column<UInt32>
    private let byRow: Column<UInt32>

    /// Number of categories.
    public var categoryCount: Int { starts.count - 1 }

    init(_ file: SectionFile, rows: Int, categories: Int) throws(SnapshotError) {
        guard file.parameters[0] == UInt64(rows), file.parameters[1] == UInt64(categories) else {
            throw .corrupt(file: file.name, offset: 32, reason: "row/category counts do not match the attributes")
        }
        let entries = try file.parameter(2, "categorised row count")
        try file.expectSection(0, bytes: rows * 4, "global list")
        try file.expectSection(1, bytes: (categories + 1) * 8, "category start")
        try file.expectSection(2, bytes: entries * 4, "category popularity list")
        try file.expectSection(3, bytes: entries * 4, "category posting list")
        global = try mappingErrors { try file.section(0).column(UInt32.self, offset: 0, count: rows) }
        starts = try mappingErrors { try file.section(1).column(UInt64.self, offset: 0, count: categories + 1) }
        byPopularity = try mappingErrors { try file.section(2).column(UInt32.self, offset: 0, count: entries) }
        byRow = try mappingErrors { try file.section(3).column(UInt32.self, offset: 0, count: entries) }
        var previous: UInt64 = 0
        for index in 0...categories {
            let start = starts[index]
            guard start >= previous, start <= UInt64(entries), index > 0 || start == 0 else {
                throw .corrupt(
                    file: file.name, offset: file.section(1).baseOffset + 8 * index,
                    reason: "category start \(index) = \(start) is out of order or past \(entries) entries")
            }
            previous = start
        }
        guard previous == UInt64(entries) else {
            throw .corrupt(
                file: file.name, offset: file.section(1).baseOffset + 8 * categories,
                reason: "category starts end at \(previous), expected \(entries)")
        }
    }

    private func range(_ category: Int) -> Range<Int> {
        precondition(category >= 0 && category < categoryCount, "category \(category) out of range")
        return Int(starts[category])..<Int(starts[category + 1])
    }

    /// Number of items in `category`. O(1).
    public func itemCount(inCategory category: Int) -> Int { range(category).count }

    /// Rows of `category`, most popular first. O(1); the buffer is in place.
    public func mostPopular(inCategory category: Int) -> UnsafeBufferPointer<UInt32> {
        UnsafeBufferPointer(rebasing: byPopularity.buffer[range(category)])
    }

    /// Rows of `category` in ascending order (a posting list). O(1); the buffer is in place.
    public func rows(inCategory category: Int) -> UnsafeBufferPointer<UInt32> {
        UnsafeBufferPointer(rebasing: byRow.buffer[range(category)])
    }

    /// Checks every list against the attribute columns: each is a permutation of the right rows in the
    /// documented order. O(rows · log rows) worst case; allocates a marker array.
    func verify(name: String, attributes: ItemAttributes) throws(SnapshotError) {
        let rowCount = attributes.count
        func fail(_ reason: String) -> SnapshotError { .corrupt(file: name, offset: 0, reason: reason) }
        func before(_ a: UInt32, _ b: UInt32) -> Bool {
            let pa = attributes.popularity[Int(a)]
            let pb = attributes.popularity[Int(b)]
            return pa > pb || (pa == pb && a < b)
        }
        var seen = [Bool](repeating: false, count: rowCount)
        for index in 0..<rowCount {
            let row = global[index]
            guard Int(row) < rowCount, !seen[Int(row)] else {
                throw fail("global list entry \(index): bad or repeated row \(row)")
            }
            seen[Int(row)] = true
            if index > 0, !before(global[index - 1], row) { throw fail("global list not sorted at entry \(index)") }
        }
        for category in 0..<categoryCount {
            let popular = mostPopular(inCategory: category)
            let posting = rows(inCategory: category)
            for index in 0..<posting.count {
                let row = posting[index]
                guard Int(row) < rowCount, attributes.category[Int(row)] == UInt32(category) else {
                    throw fail("category \(category) posting entry \(index): row \(row) is not in the category")
                }
                if index > 0, posting[index - 1] >= row {
                    throw fail("category \(category) posting list not ascending")
                }
                let ranked = popular[index]
                guard Int(ranked) < rowCount, attributes.category[Int(ranked)] == UInt32(category) else {
                    throw fail("category \(category) popularity entry \(index): row \(ranked) is not in the category")
                }
                if index > 0, !before(popular[index - 1], ranked) { throw fail("category \(category) list not sorted") }
            }
        }
        let categorised = (0..<rowCount).reduce(0) { $0 + (attributes.category[$1] == ItemAttributes.none ? 0 : 1) }
        guard categorised == byRow.count else {
            throw fail("lists hold \(byRow.count) rows, \(categorised) are categorised")
        }
    }
}

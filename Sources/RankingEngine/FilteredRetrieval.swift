import Snapshot
import VectorIndex

/// The snapshot's category and brand value indexes by id, for O(1) lookup on the request path.
struct ValueIndexes: Sendable {
    private let all: [SubsetIndex]
    private let byCategory: [Int32]  // index into `all`, or -1
    private let byBrand: [Int32]

    init(_ loaded: [(entry: FilterIndex.Entry, index: SubsetIndex)], categories: Int, brands: Int) {
        var byCategory = [Int32](repeating: -1, count: categories)
        var byBrand = [Int32](repeating: -1, count: brands)
        for (position, (entry, _)) in loaded.enumerated() {
            switch entry.attribute {
            case .category: byCategory[entry.value] = Int32(position)
            case .brand: byBrand[entry.value] = Int32(position)
            }
        }
        all = loaded.map(\.index)
        self.byCategory = byCategory
        self.byBrand = byBrand
    }

    /// How many value indexes the snapshot has.
    var count: Int { all.count }

    func index(_ attribute: FilterIndex.Attribute, _ value: Int) -> SubsetIndex? {
        let table = attribute == .category ? byCategory : byBrand
        guard value < table.count, table[value] >= 0 else { return nil }
        return all[Int(table[value])]
    }
}

/// Retrieval of one Rank call's candidate pool under its filter: the planner of docs/INDEX.md "Filters".
///
/// A filter that includes categories or brands is served from the smaller of the two include lists (by item
/// count), value by value: a value with a value index is searched in it (its own plan: a scan of its quantised
/// rows, or for a very large value a walk of its graph), a value without one through its posting list (the global
/// index's plan: usually an exact scan of those rows). The values' results are merged into the pool. An unfiltered
/// call, and any other filter passing at least `minPartitionShare` of the items, searches the snapshot's partitions
/// when it has them (docs/INDEX.md "Partitions"); the rest goes to the global index with the filter's estimated
/// pass count.
struct FilteredRetrieval {
    let serving: ServingSnapshot
    let scratch: RankScratch
    let pool: Int
    let ef: Int

    /// A filter passing at least this share of the items is searched in the snapshot's partitions when it has
    /// them (below it the global plan's exact scan of the passing rows is cheaper than scanning partitions until
    /// enough of their rows pass).
    static let minPartitionShare = 0.1

    /// Passing rows a partition search sees for a pool (docs/INDEX.md "Partitions": recall@300 ≥ 0.95 needed
    /// about 10 000 at 1M items for 0.99).
    static func probeRows(pool: Int) -> Int { max(4_096, 32 * pool) }

    /// A list that covers more than this share of the items is searched in the global graph (where a walk at that
    /// selectivity is nearly as good as an unfiltered one) instead of value by value.
    static let maxDrivingShare = 0.5

    /// How a call's pool was retrieved.
    enum Route: Equatable {
        /// Nothing can pass the filter: no search ran.
        case nothing
        /// The global index (or an exact scan of all rows) with the filter.
        case global
        /// The snapshot's partitions, best centroid first.
        case partitions
        /// Value by value through an include list: how many values were searched in their value index and how
        /// many through their posting list.
        case values(FilterIndex.Attribute, indexed: Int, postings: Int)
    }

    /// Fills `scratch.results` with the best `pool` rows passing `filter` for `scratch.query`, best first.
    @discardableResult
    func run(filter: ItemFilter) throws(VectorIndexError) -> Route {
        scratch.results.removeAll(keepingCapacity: true)
        let statistics = serving.filterStatistics
        let estimate = statistics.estimate(filter)
        // An unknown or empty category, brand or tag: no item can pass, so nothing to search (a scan would check
        // the filter on every row to find that out).
        guard pool > 0, !estimate.passesNothing else { return .nothing }
        return try scratch.query.withUnsafeBufferPointer { (query) throws(VectorIndexError) -> Route in
            if let (attribute, include, exclude) = drivingList(filter) {
                return try searchValues(query, filter, attribute, include, exclude)
            } else if filter.acceptsEverything {
                if let partitions = serving.partitions {
                    try searchPartitions(partitions, query, AcceptAllRows())
                    return .partitions
                }
                try search(query, AcceptAllRows(), .all(estimatedPassCount: nil))
            } else if filter.onlyExcludesRemoved {
                // Only live removals: a two-word filter (no boxing), in the partitions like an unfiltered call, or
                // walked like an unfiltered search with the beam widened for the removed share.
                let passing = max(statistics.rows - filter.removedCount, 0)
                if let partitions = serving.partitions,
                    Double(passing) >= Self.minPartitionShare * Double(max(statistics.rows, 1))
                {
                    try searchPartitions(partitions, query, filter.removedRowSet)
                    return .partitions
                }
                try search(query, filter.removedRowSet, .all(estimatedPassCount: passing))
            } else {
                if let partitions = serving.partitions, let passing = estimate.passCount,
                    Double(passing) >= Self.minPartitionShare * Double(max(statistics.rows, 1))
                {
                    try searchPartitions(partitions, query, filter)
                    return .partitions
                }
                try search(query, filter, .all(estimatedPassCount: estimate.passCount))
            }
            return .global
        }
    }

    /// The include list to search value by value: categories or brands, whichever passes fewer items (brands only
    /// with the snapshot's brand posting lists), unless it covers more than `maxDrivingShare` of the items.
    private func drivingList(
        _ filter: ItemFilter
    ) -> (FilterIndex.Attribute, UnsafeBufferPointer<UInt64>, UnsafeBufferPointer<UInt64>)? {
        let statistics = serving.filterStatistics
        var best: (attribute: FilterIndex.Attribute, count: Int)?
        if filter.restrictsCategories {
            best = (.category, FilterStatistics.sum(filter.includeCategories, statistics.categoryCounts))
        }
        if filter.restrictsBrands, serving.snapshot.filterIndex != nil {
            let count = FilterStatistics.sum(filter.includeBrands, statistics.brandCounts)
            if best.map({ count < $0.count }) ?? true { best = (.brand, count) }
        }
        guard let best, Double(best.count) <= Self.maxDrivingShare * Double(max(statistics.rows, 1)) else {
            return nil
        }
        return best.attribute == .category
            ? (.category, filter.includeCategories, filter.excludeCategories)
            : (.brand, filter.includeBrands, filter.excludeBrands)
    }

    private func searchValues(
        _ query: UnsafeBufferPointer<Float>, _ filter: ItemFilter, _ attribute: FilterIndex.Attribute,
        _ include: UnsafeBufferPointer<UInt64>, _ exclude: UnsafeBufferPointer<UInt64>
    ) throws(VectorIndexError) -> Route {
        // Inside one value's index the value's own condition always holds; what remains is estimated from the
        // other conditions, assumed independent of the value.
        let statistics = serving.filterStatistics
        let rest = statistics.estimate(filter, excluding: attribute).passCount
        let restShare = rest.map { Double($0) / Double(max(statistics.rows, 1)) }
        let onlyThisList = filter.onlyIncludes(attribute)
        var values = 0
        var indexed = 0
        scratch.mergedResults.removeAll(keepingCapacity: true)
        scratch.mergedRunEnds.removeAll(keepingCapacity: true)
        for (word, bits) in include.enumerated() {
            var remaining = bits & ~(word < exclude.count ? exclude[word] : 0)
            while remaining != 0 {
                let value = word * 64 + remaining.trailingZeroBitCount
                remaining &= remaining - 1
                guard value < (attribute == .category ? statistics.categoryCounts.count : statistics.brandCounts.count)
                else { continue }
                indexed += try searchValue(query, filter, attribute, value, restShare, onlyThisList) ? 1 : 0
                scratch.mergedResults.append(contentsOf: scratch.results)
                scratch.mergedRunEnds.append(scratch.mergedResults.count)
                values += 1
            }
        }
        let route = Route.values(attribute, indexed: indexed, postings: values - indexed)
        // One value: its search already left the pool in `scratch.results`.
        guard values > 1 else {
            if values == 0 { scratch.results.removeAll(keepingCapacity: true) }
            return route
        }
        // Several values: their best `pool` each, each run best first, merged (items have one category and one
        // brand, so the runs are disjoint). Same order as a search: score descending, ties by row. A merge, not a
        // sort: no temporary buffer, and O(pool × values) with values small.
        mergeRuns()
        return route
    }

    /// Merges the sorted runs of `scratch.mergedResults` (ending at `scratch.mergedRunEnds`) into the best `pool`
    /// of `scratch.results`.
    private func mergeRuns() {
        let merged = scratch.mergedResults
        let ends = scratch.mergedRunEnds
        scratch.mergedRunHeads.removeAll(keepingCapacity: true)
        var start = 0
        for end in ends {
            scratch.mergedRunHeads.append(start)
            start = end
        }
        scratch.results.removeAll(keepingCapacity: true)
        while scratch.results.count < pool {
            var best = -1
            for run in 0..<ends.count where scratch.mergedRunHeads[run] < ends[run] {
                if best < 0 || Self.precedes(merged[scratch.mergedRunHeads[run]], merged[scratch.mergedRunHeads[best]])
                {
                    best = run
                }
            }
            guard best >= 0 else { break }
            scratch.results.append(merged[scratch.mergedRunHeads[best]])
            scratch.mergedRunHeads[best] += 1
        }
    }

    /// The search order: score descending, ties by row.
    private static func precedes(_ a: SearchResult, _ b: SearchResult) -> Bool {
        a.score > b.score || (a.score == b.score && a.row < b.row)
    }

    private func searchValue(
        _ query: UnsafeBufferPointer<Float>, _ filter: ItemFilter, _ attribute: FilterIndex.Attribute, _ value: Int,
        _ restShare: Double?, _ onlyThisList: Bool
    ) throws(VectorIndexError) -> Bool {
        if let valueIndex = serving.valueIndexes.index(attribute, value) {
            let snapshot = serving.snapshot
            let vectors = snapshot.itemVectors.matrix
            if onlyThisList && filter.removedRows.isEmpty {
                try valueIndex.search(
                    query: query, k: pool, ef: ef, filter: AcceptAllRows(), estimatedPassCount: nil, vectors: vectors,
                    metric: snapshot.metric, scratch: scratch.search, into: &scratch.results)
            } else if onlyThisList {
                try valueIndex.search(
                    query: query, k: pool, ef: ef, filter: filter.removedRowSet, estimatedPassCount: nil,
                    vectors: vectors, metric: snapshot.metric, scratch: scratch.search, into: &scratch.results)
            } else {
                let rows = valueIndex.rows.count
                let passing = restShare.map { min(rows, Int(($0 * Double(rows)).rounded(.up))) } ?? rows
                try valueIndex.search(
                    query: query, k: pool, ef: ef, filter: filter, estimatedPassCount: passing, vectors: vectors,
                    metric: snapshot.metric, scratch: scratch.search, into: &scratch.results)
            }
            return true
        }
        // Brands drive only when the snapshot has brand posting lists (`drivingList`), so `filterIndex` is there.
        let list =
            attribute == .category
            ? serving.snapshot.popularity.rows(inCategory: value) : serving.snapshot.filterIndex!.rows(inBrand: value)
        guard !list.isEmpty else {
            scratch.results.removeAll(keepingCapacity: true)
            return false
        }
        // The value's posting list: the global plan may scan it exactly instead of walking.
        // Not `removedRowSet` even when only removals remain: the plan may walk the whole graph, and then the
        // filter itself must reject the rows outside the list (`CandidateRows.rows`).
        try list.withMemoryRebound(to: Int32.self) { (rows) throws(VectorIndexError) in
            try search(query, filter, .rows(rows))
        }
        return false
    }

    private func searchPartitions<Filter: RowFilter>(
        _ partitions: PartitionIndex, _ query: UnsafeBufferPointer<Float>, _ filter: Filter
    ) throws(VectorIndexError) {
        try partitions.search(
            query: query, k: pool, probeRows: Self.probeRows(pool: pool), filter: filter,
            vectors: serving.snapshot.itemVectors.matrix, metric: serving.snapshot.metric, scratch: scratch.search,
            into: &scratch.results)
    }

    private func search<Filter: RowFilter>(
        _ query: UnsafeBufferPointer<Float>, _ filter: Filter, _ hint: CandidateRows
    ) throws(VectorIndexError) {
        if let index = serving.index {
            try index.search(
                query: query, k: pool, ef: ef, filter: filter, candidates: hint, scratch: scratch.search,
                into: &scratch.results)
        } else {
            var rows: UnsafeBufferPointer<Int32>?
            if case .rows(let list) = hint { rows = list }
            try ExactSearch.search(
                vectors: serving.snapshot.itemVectors.matrix, metric: serving.snapshot.metric, query: query, k: pool,
                filter: filter, rows: rows, scratch: scratch.search, into: &scratch.results)
        }
    }
}

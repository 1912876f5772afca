import Snapshot

/// Counts derived once per snapshot (at activation, off the request path) that estimate how many
/// items a request's filter passes, so retrieval can choose between the graph walk and an exact
/// scan (`CandidateRows.all(estimatedPassCount:)`, docs/INDEX.md "Filters") for filters other
/// than a single category, which has its own posting list.
///
/// Every count is of items satisfying one condition; a filter's estimate is the smallest count
/// among the conditions it sets: an upper bound on the items passing all of them (exclusions only
/// remove items). Categories (from the snapshot's per-category popularity lists) and brands are
/// counted exactly; tags give an upper bound (an item may carry several of the named tags); price
/// ranges are estimated from a sorted sample of at most 65 536 prices.
struct FilterStatistics: Sendable {
    let rows: Int
    let categoryCounts: [Int]  // from the popularity lists
    let brandCounts: [Int]
    /// Items carrying each of the 64 tag bits.
    let tagCounts: [Int]
    let inStockCount: Int
    /// Prices (cents) of every `priceStride`-th item that has a price, sorted.
    let priceSample: [Int64]
    let priceStride: Int

    static let maxPriceSample = 65_536

    init(attributes: ItemAttributes, popularity: PopularityLists, brands: Int) {
        let rows = attributes.count
        self.rows = rows
        var brandCounts = [Int](repeating: 0, count: brands)
        var tagCounts = [Int](repeating: 0, count: 64)
        var inStock = 0
        for row in 0..<rows {
            let brand = Int(attributes.brand.buffer[row])
            if brand < brands { brandCounts[brand] += 1 }
            var tags = attributes.tags.buffer[row]
            while tags != 0 {
                tagCounts[tags.trailingZeroBitCount] += 1
                tags &= tags - 1
            }
            if attributes.inStock.buffer[row] != 0 { inStock += 1 }
        }
        let stride = max(1, (rows + Self.maxPriceSample - 1) / Self.maxPriceSample)
        var sample: [Int64] = []
        sample.reserveCapacity(rows / stride + 1)
        for row in Swift.stride(from: 0, to: rows, by: stride) {
            let price = attributes.priceCents.buffer[row]
            if price != ItemAttributes.noPrice { sample.append(price) }
        }
        sample.sort()
        categoryCounts = (0..<popularity.categoryCount).map { popularity.itemCount(inCategory: $0) }
        self.brandCounts = brandCounts
        self.tagCounts = tagCounts
        inStockCount = inStock
        priceSample = sample
        priceStride = stride
    }

    /// What a request's filter is estimated to pass.
    struct Estimate: Equatable {
        /// Items it passes, estimated; nil when it sets no counted condition (only exclusions, or
        /// nothing), so the plan cannot do better than the plain walk.
        let passCount: Int?
        /// A condition counted exactly or bounded from above (categories, brands, tags, stock)
        /// passes no item, so the whole filter passes none: retrieval can skip the search. (A
        /// sampled price count of 0 proves nothing.)
        let passesNothing: Bool
    }

    /// The estimate for `filter`, ignoring its include list of `excluding` (for a search that runs inside that
    /// list's own posting lists or subgraphs, where the condition holds for every row).
    func estimate(_ filter: ItemFilter, excluding: FilterIndex.Attribute? = nil) -> Estimate {
        var bound: Int?
        func consider(_ count: Int) { bound = min(bound ?? count, count) }
        if filter.restrictsCategories && excluding != .category {
            consider(Self.sum(filter.includeCategories, categoryCounts))
        }
        if filter.restrictsBrands && excluding != .brand { consider(Self.sum(filter.includeBrands, brandCounts)) }
        // Live updates move items in and out of stock and add or remove tags: their deltas keep these
        // counts exact (removals only lower the true count, so the bound holds).
        if let tags = filter.tagsAny {
            var count = 0
            var bits = tags
            while bits != 0 {
                let bit = bits.trailingZeroBitCount
                count += tagCounts[bit] + (bit < filter.tagDeltas.count ? filter.tagDeltas[bit] : 0)
                bits &= bits - 1
            }
            consider(min(max(count, 0), rows))
        }
        if filter.inStockOnly { consider(max(inStockCount + filter.inStockDelta, 0)) }
        var passCount = bound
        if filter.minPriceCents != nil || filter.maxPriceCents != nil {
            let low = filter.minPriceCents.map { Self.firstIndex(in: priceSample, notBelow: $0) } ?? 0
            let high = filter.maxPriceCents.map { Self.firstIndex(in: priceSample, above: $0) } ?? priceSample.count
            let sampled = min(max(high - low, 0) * priceStride, rows)
            passCount = min(passCount ?? sampled, sampled)
        }
        return Estimate(passCount: passCount, passesNothing: bound == 0)
    }

    /// Sum of `counts[id]` over the ids set in `bits`.
    static func sum(_ bits: UnsafeBufferPointer<UInt64>, _ counts: [Int]) -> Int {
        var total = 0
        for (word, value) in bits.enumerated() {
            var remaining = value
            while remaining != 0 {
                let id = word * 64 + remaining.trailingZeroBitCount
                if id < counts.count { total += counts[id] }
                remaining &= remaining - 1
            }
        }
        return total
    }

    /// Index of the first element ≥ `value` in the sorted `array`.
    private static func firstIndex(in array: [Int64], notBelow value: Int64) -> Int {
        var (low, high) = (0, array.count)
        while low < high {
            let mid = (low + high) >> 1
            if array[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Index of the first element > `value` in the sorted `array`.
    private static func firstIndex(in array: [Int64], above value: Int64) -> Int {
        var (low, high) = (0, array.count)
        while low < high {
            let mid = (low + high) >> 1
            if array[mid] <= value { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

import LiveState
import RankingModel
import Snapshot
import VectorIndex

/// A request's filter over item rows, read straight from the snapshot's attribute columns (or the live
/// overlay's copies of the stock, price and tag columns once an update changed them): the predicate
/// retrieval applies during the walk and the engine applies to pins and popularity. Items removed by
/// a live update never pass.
///
/// Built per request from buffers in the caller's ``RankScratch`` (bitsets, the sorted excluded
/// rows), the mapped columns and the overlay's view; valid only while all three live, i.e. during the
/// request.
struct ItemFilter: RowFilter {
    let category: UnsafeBufferPointer<UInt32>
    let brand: UnsafeBufferPointer<UInt32>
    let priceCents: UnsafeBufferPointer<Int64>
    let inStock: UnsafeBufferPointer<UInt8>
    let tags: UnsafeBufferPointer<UInt64>
    /// Bitsets over category / brand ids; empty when the request does not restrict them.
    let includeCategories: UnsafeBufferPointer<UInt64>
    let excludeCategories: UnsafeBufferPointer<UInt64>
    let includeBrands: UnsafeBufferPointer<UInt64>
    let excludeBrands: UnsafeBufferPointer<UInt64>
    let restrictsCategories: Bool
    let restrictsBrands: Bool
    let inStockOnly: Bool
    let minPriceCents: Int64?
    let maxPriceCents: Int64?
    /// Tag bits an item must have one of; `nil` when the request names no tag.
    let tagsAny: UInt64?
    /// Sorted, unique.
    let excludedRows: UnsafeBufferPointer<Int32>
    /// Bit r set when item row r was removed by a live update; empty when none was.
    let removedRows: UnsafeBufferPointer<UInt64>
    /// How many rows `removedRows` removes.
    let removedCount: Int
    /// Live updates' change to the in-stock count and to each tag's item count (filter estimates).
    let inStockDelta: Int
    let tagDeltas: UnsafeBufferPointer<Int>
    /// True when the filter restricts nothing and no item is removed (retrieval can skip it entirely).
    let acceptsEverything: Bool
    /// True when the request's filter restricts nothing but live updates removed items: retrieval can search
    /// with the small ``ExcludedRowSet`` (walked like an unfiltered search) instead of this filter.
    var onlyExcludesRemoved: Bool { !acceptsEverything && requestIsEmpty }
    /// The request's own filter is empty (removals aside).
    let requestIsEmpty: Bool

    /// The removed rows as a search filter.
    var removedRowSet: ExcludedRowSet { ExcludedRowSet(bits: removedRows) }

    @inline(__always)
    /// A price bound in cents, saturated to Int64: validation allows any finite price ≥ 0, and a
    /// bound past Int64.max cents (found by the rank-request fuzz target) must mean "no limit",
    /// not trap the server.
    static func cents(_ value: Double, _ rule: FloatingPointRoundingRule) -> Int64 {
        let rounded = value.rounded(rule)
        // 2^63 is exactly representable; every Double below it converts.
        guard rounded < 9_223_372_036_854_775_808.0 else { return .max }
        guard rounded >= -9_223_372_036_854_775_808.0 else { return .min }
        return Int64(rounded)
    }

    private static func contains(_ bits: UnsafeBufferPointer<UInt64>, _ id: UInt32) -> Bool {
        let word = Int(id >> 6)
        return word < bits.count && bits[word] & (1 << UInt64(id & 63)) != 0
    }

    @inline(__always)
    func accepts(_ row: Int32) -> Bool {
        let index = Int(row)
        if !removedRows.isEmpty && Self.contains(removedRows, UInt32(truncatingIfNeeded: index)) { return false }
        if inStockOnly && inStock[index] == 0 { return false }
        if restrictsCategories || !excludeCategories.isEmpty {
            let value = category[index]
            if restrictsCategories && !Self.contains(includeCategories, value) { return false }
            if Self.contains(excludeCategories, value) { return false }
        }
        if restrictsBrands || !excludeBrands.isEmpty {
            let value = brand[index]
            if restrictsBrands && !Self.contains(includeBrands, value) { return false }
            if Self.contains(excludeBrands, value) { return false }
        }
        if minPriceCents != nil || maxPriceCents != nil {
            // An item without a price cannot satisfy a price bound.
            let price = priceCents[index]
            if price == ItemAttributes.noPrice { return false }
            if let low = minPriceCents, price < low { return false }
            if let high = maxPriceCents, price > high { return false }
        }
        if let tagsAny, tags[index] & tagsAny == 0 { return false }
        if !excludedRows.isEmpty {
            // Binary search: the list is short and sorted; no hashing on the hot path.
            var low = 0
            var high = excludedRows.count
            while low < high {
                let mid = (low + high) >> 1
                if excludedRows[mid] < row { low = mid + 1 } else { high = mid }
            }
            if low < excludedRows.count && excludedRows[low] == row { return false }
        }
        return true
    }

    /// Whether the request's only condition is `attribute`'s include list, so every row of one of its values
    /// passes unless live updates removed it (`removedRows`).
    func onlyIncludes(_ attribute: FilterIndex.Attribute) -> Bool {
        let other = attribute == .category ? restrictsBrands : restrictsCategories
        return !other && !inStockOnly && minPriceCents == nil && maxPriceCents == nil
            && tagsAny == nil
            && excludedRows.isEmpty && excludeCategories.allSatisfy { $0 == 0 }
            && excludeBrands.allSatisfy { $0 == 0 }
    }

    /// Why `row` fails, for dropped pins; `nil` when it passes.
    func rejection(_ row: Int32) -> String? {
        guard !accepts(row) else { return nil }
        let index = Int(row)
        if !removedRows.isEmpty && Self.contains(removedRows, UInt32(truncatingIfNeeded: index)) {
            return "item removed"
        }
        if inStockOnly && inStock[index] == 0 { return "out of stock" }
        if !excludedRows.isEmpty && excludedRows.contains(row) { return "excluded by filter.exclude_item_ids" }
        if restrictsCategories || Self.contains(excludeCategories, category[index]) {
            if !(restrictsCategories && !Self.contains(includeCategories, category[index])) {
                return "category excluded by filter"
            }
            if restrictsCategories { return "category not in filter.include_categories" }
        }
        if restrictsBrands || Self.contains(excludeBrands, brand[index]) { return "brand excluded by filter" }
        if minPriceCents != nil || maxPriceCents != nil { return "price outside the filter's range" }
        return "no tag in filter.tags_any"
    }
}

extension ItemFilter {
    /// Resolves a request filter against `snapshot` and its live overlay view `live` into `scratch`'s
    /// buffers and calls `body` with the predicate (the buffers are only valid inside).
    ///
    /// Unknown names in include lists match nothing (a filter for a category the catalogue does
    /// not have passes no item); unknown names in exclude lists and unknown excluded item ids
    /// are ignored.
    /// `eventRows` and `eventCategories` (frequency caps, purchases: the user's recorded events) are
    /// excluded as if the request had named them.
    static func with<Result, Failure: Error>(
        _ filter: RankRequest.Filter, snapshot: Snapshot, live: OverlayColumns, scratch: RankScratch,
        eventRows: [Int32] = [], eventCategories: [UInt32] = [],
        _ body: (ItemFilter) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let attributes = snapshot.attributes
        func fill(_ bits: inout [UInt64], names: [String], table: IdTable) {
            bits.removeAll(keepingCapacity: true)
            guard !names.isEmpty else { return }
            bits.append(contentsOf: repeatElement(0, count: (table.count + 63) / 64))
            for name in names {
                if let id = table.row(for: name) { bits[id >> 6] |= 1 << UInt64(id & 63) }
            }
        }
        fill(&scratch.includeCategoryBits, names: filter.includeCategories, table: snapshot.categories)
        fill(&scratch.excludeCategoryBits, names: filter.excludeCategories, table: snapshot.categories)
        fill(&scratch.includeBrandBits, names: filter.includeBrands, table: snapshot.brands)
        fill(&scratch.excludeBrandBits, names: filter.excludeBrands, table: snapshot.brands)
        scratch.excludedRows.removeAll(keepingCapacity: true)
        for id in filter.excludeItemIDs {
            if let row = snapshot.itemIds.row(for: id) { scratch.excludedRows.append(Int32(row)) }
        }
        scratch.excludedRows.append(contentsOf: eventRows)
        scratch.excludedRows.sort()
        if !eventCategories.isEmpty && scratch.excludeCategoryBits.isEmpty {
            scratch.excludeCategoryBits.append(
                contentsOf: repeatElement(0, count: (snapshot.categories.count + 63) / 64))
        }
        for value in eventCategories where Int(value >> 6) < scratch.excludeCategoryBits.count {
            scratch.excludeCategoryBits[Int(value >> 6)] |= 1 << UInt64(value & 63)
        }
        let requestIsEmpty = filter.isEmpty && eventRows.isEmpty && eventCategories.isEmpty
        var tagBits: UInt64?
        if !filter.tagsAny.isEmpty {
            var bits: UInt64 = 0
            for name in filter.tagsAny {
                if let bit = snapshot.tags.row(for: name), bit < 64 { bits |= 1 << UInt64(bit) }
            }
            tagBits = bits
        }
        // Cents, rounded outwards so a bound of 9.99 keeps an item priced 9.99.
        let minCents = filter.minPrice.map { Self.cents($0 * 100, .down) }
        let maxCents = filter.maxPrice.map { Self.cents($0 * 100, .up) }
        return try scratch.includeCategoryBits.withUnsafeBufferPointer {
            (includeCategories) throws(Failure) -> Result in
            try scratch.excludeCategoryBits.withUnsafeBufferPointer { (excludeCategories) throws(Failure) -> Result in
                try scratch.includeBrandBits.withUnsafeBufferPointer { (includeBrands) throws(Failure) -> Result in
                    try scratch.excludeBrandBits.withUnsafeBufferPointer { (excludeBrands) throws(Failure) -> Result in
                        try scratch.excludedRows.withUnsafeBufferPointer { (excludedRows) throws(Failure) -> Result in
                            try body(
                                ItemFilter(
                                    category: attributes.category.buffer, brand: attributes.brand.buffer,
                                    priceCents: live.priceCents, inStock: live.inStock,
                                    tags: live.tags, includeCategories: includeCategories,
                                    excludeCategories: excludeCategories, includeBrands: includeBrands,
                                    excludeBrands: excludeBrands,
                                    restrictsCategories: !filter.includeCategories.isEmpty,
                                    restrictsBrands: !filter.includeBrands.isEmpty, inStockOnly: filter.inStockOnly,
                                    minPriceCents: minCents, maxPriceCents: maxCents, tagsAny: tagBits,
                                    excludedRows: excludedRows, removedRows: live.removedItems,
                                    removedCount: live.removedItemCount, inStockDelta: live.inStockDelta,
                                    tagDeltas: live.tagDeltas, acceptsEverything: requestIsEmpty && !live.removesItems,
                                    requestIsEmpty: requestIsEmpty))
                        }
                    }
                }
            }
        }
    }
}

public import MappedStorage

/// Item attribute columns for business rules and filters, each readable by row in O(1).
///
/// Layout (file kind `attributes`; parameters: row count, category count, brand count, tag count),
/// one section per column, each `rowCount` values long:
/// 0. `category` u32 — id into `Snapshot.categories`, or `ItemAttributes.none`
/// 1. `brand` u32 — id into `Snapshot.brands`, or `ItemAttributes.none`
/// 2. `priceCents` i64 — price in minor currency units (the JSON `price` × 100, rounded), or `ItemAttributes.noPrice`
/// 3. `inStock` u8 — 1 in stock, 0 not
/// 4. `popularity` f32 — the catalogue's popularity score (higher = more popular)
/// 5. `createdAt` i64 — unix seconds
/// 6. `tags` u64 — bit `t` set when the item has tag id `t` of `Snapshot.tags` (≤ 64 tags)
///
/// Open checks every column's length against the row count; category, brand and tag ids are checked
/// against their dictionaries by `Snapshot.verifyStructure()`.
public struct ItemAttributes: @unchecked Sendable {
    /// The id stored for "no category" / "no brand".
    public static let none: UInt32 = .max
    /// The price stored for "no price".
    public static let noPrice: Int64 = .min

    /// Number of rows (items).
    public let count: Int
    /// Category id per row (`none` = no category).
    public let category: Column<UInt32>
    /// Brand id per row (`none` = no brand).
    public let brand: Column<UInt32>
    /// Price in minor currency units per row (`noPrice` = none).
    public let priceCents: Column<Int64>
    /// 1 if in stock, else 0.
    public let inStock: Column<UInt8>
    /// Popularity score per row.
    public let popularity: Column<Float>
    /// Creation time per row, unix seconds.
    public let createdAt: Column<Int64>
    /// Tag bitset per row (bit t = tag id t).
    public let tags: Column<UInt64>

    init(_ file: SectionFile, categories: Int, brands: Int, tags tagCount: Int) throws(SnapshotError) {
        count = try file.parameter(0, "row count")
        for (index, expected, what) in [
            (1, categories, "category count"), (2, brands, "brand count"), (3, tagCount, "tag count"),
        ]
        where file.parameters[index] != UInt64(expected) {
            throw .corrupt(
                file: file.name, offset: 32 + 8 * index,
                reason: "\(what) \(file.parameters[index]) does not match its dictionary (\(expected))")
        }
        let rows = count
        func column<T: BitwiseCopyable>(_ index: Int, _ type: T.Type, _ name: String) throws(SnapshotError) -> Column<T>
        {
            try file.expectSection(index, bytes: rows * MemoryLayout<T>.stride, name)
            return try mappingErrors { try file.section(index).column(T.self, offset: 0, count: rows) }
        }
        category = try column(0, UInt32.self, "category")
        brand = try column(1, UInt32.self, "brand")
        priceCents = try column(2, Int64.self, "price")
        inStock = try column(3, UInt8.self, "in-stock")
        popularity = try column(4, Float.self, "popularity")
        createdAt = try column(5, Int64.self, "created-at")
        tags = try column(6, UInt64.self, "tags")
    }

    /// Checks every id against its dictionary and every flag value. O(rows).
    func verify(name: String, categories: Int, brands: Int, tags tagCount: Int) throws(SnapshotError) {
        let tagMask: UInt64 = tagCount >= 64 ? .max : (1 << UInt64(tagCount)) - 1
        for row in 0..<count {
            let categoryId = category[row]
            let brandId = brand[row]
            guard categoryId == Self.none || Int(categoryId) < categories else {
                throw .corrupt(file: name, offset: 0, reason: "row \(row): category id \(categoryId) out of range")
            }
            guard brandId == Self.none || Int(brandId) < brands else {
                throw .corrupt(file: name, offset: 0, reason: "row \(row): brand id \(brandId) out of range")
            }
            guard inStock[row] <= 1 else {
                throw .corrupt(file: name, offset: 0, reason: "row \(row): in-stock flag not 0/1")
            }
            guard tags[row] & ~tagMask == 0 else {
                throw .corrupt(file: name, offset: 0, reason: "row \(row): unknown tag bits")
            }
            guard popularity[row].isFinite else {
                throw .corrupt(file: name, offset: 0, reason: "row \(row): popularity not finite")
            }
        }
    }
}

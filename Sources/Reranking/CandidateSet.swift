/// The attributes of one item that re-ranking rules look at. Small integer ids only: the engine
/// maps string ids (item, category, brand) to snapshot rows / dictionary ids before re-ranking.
public struct ItemAttributes: Sendable, Hashable {
    /// The item's row in the active snapshot; pins, exclusions and item boosts refer to it.
    public var row: Int32
    /// Category id (a dictionary id from the snapshot).
    public var category: Int32
    /// Brand id (a dictionary id from the snapshot).
    public var brand: Int32
    /// Whether the item can be sold now; out-of-stock items are excluded when the rule asks.
    public var inStock: Bool
    /// Creation time, Unix seconds; freshness boosts compare it with `RerankRequest.now`.
    public var createdAt: Int64
    /// Up to 64 tags as bits; tag boosts match when any of their bits is set.
    public var tags: UInt64

    public init(row: Int32, category: Int32, brand: Int32, inStock: Bool = true, createdAt: Int64 = 0, tags: UInt64 = 0)
    {
        self.row = row
        self.category = category
        self.brand = brand
        self.inStock = inStock
        self.createdAt = createdAt
        self.tags = tags
    }
}

/// Why an item is in a `CandidateSet`.
public enum CandidateRole: UInt8, Sendable {
    /// Returned by retrieval: may fill any free position.
    case retrieved = 0
    /// Supplied only so a pin can refer to it (for example a sponsored item outside the retrieved
    /// set): it appears in the list only at its pinned position.
    case pinOnly = 1
}

/// The re-ranker's input: every item it may place, as a structure of arrays, plus a dense
/// `count × dimension` matrix of L2-normalised item vectors (row `i` belongs to candidate `i`).
///
/// Keep one per event loop (or inside the engine's per-loop scratch) and call `removeAll()`
/// between requests: capacity is kept, so a steady-state request appends without allocating.
/// Appending normalises the vector once so that every similarity the diversifiers compute is a
/// plain dot product (cosine similarity). A zero vector stays zero: it is similar to nothing.
///
/// Memory: `count × (dimension × 4 + 29)` bytes plus array headers. Not thread-safe (a value type:
/// share it by giving each thread its own).
public struct CandidateSet: Sendable {
    /// Vector dimension; every appended vector must have exactly this many components.
    public let dimension: Int
    public private(set) var rows: [Int32] = []
    /// Relevance scores exactly as the caller supplied them (before boosts).
    public private(set) var relevance: [Float] = []
    public private(set) var categories: [Int32] = []
    public private(set) var brands: [Int32] = []
    public private(set) var inStock: [Bool] = []
    public private(set) var createdAt: [Int64] = []
    public private(set) var tags: [UInt64] = []
    public private(set) var roles: [CandidateRole] = []
    /// `count × dimension` floats, row-major, each row L2-normalised (or all zero).
    public private(set) var vectors: [Float] = []

    /// Creates an empty set for vectors of `dimension` components with room for `capacity` items.
    public init(dimension: Int, reservingCapacity capacity: Int = 0) {
        precondition(dimension > 0, "CandidateSet dimension must be positive")
        self.dimension = dimension
        reserveCapacity(capacity)
    }

    /// Number of items in the set.
    public var count: Int { rows.count }

    /// Makes room for `capacity` items so that appends up to it never reallocate.
    public mutating func reserveCapacity(_ capacity: Int) {
        rows.reserveCapacity(capacity)
        relevance.reserveCapacity(capacity)
        categories.reserveCapacity(capacity)
        brands.reserveCapacity(capacity)
        inStock.reserveCapacity(capacity)
        createdAt.reserveCapacity(capacity)
        tags.reserveCapacity(capacity)
        roles.reserveCapacity(capacity)
        vectors.reserveCapacity(capacity * dimension)
    }

    /// Removes every item and keeps the storage for the next request.
    public mutating func removeAll() {
        rows.removeAll(keepingCapacity: true)
        relevance.removeAll(keepingCapacity: true)
        categories.removeAll(keepingCapacity: true)
        brands.removeAll(keepingCapacity: true)
        inStock.removeAll(keepingCapacity: true)
        createdAt.removeAll(keepingCapacity: true)
        tags.removeAll(keepingCapacity: true)
        roles.removeAll(keepingCapacity: true)
        vectors.removeAll(keepingCapacity: true)
    }

    /// Appends one item, copying and normalising its vector.
    ///
    /// - Parameters:
    ///   - attributes: what the rules look at.
    ///   - relevance: the retrieval score (higher is better); it must be finite, `rerank` throws
    ///     `RerankError.nonFiniteRelevance` otherwise.
    ///   - vector: exactly `dimension` components, for example a slice of the mapped snapshot.
    ///   - role: `.pinOnly` for items supplied only for a pin.
    /// - Complexity: O(dimension).
    public mutating func append(
        _ attributes: ItemAttributes, relevance: Float, vector: UnsafeBufferPointer<Float>,
        role: CandidateRole = .retrieved
    ) {
        precondition(vector.count == dimension, "vector has \(vector.count) components, expected \(dimension)")
        appendAttributes(attributes, relevance: relevance, role: role)
        let start = vectors.count
        vectors.append(contentsOf: vector)
        vectors.withUnsafeMutableBufferPointer { all in
            let row = all.baseAddress! + start
            let squared = VectorKernels.dot(row, row, count: dimension)
            guard squared > 0, squared.isFinite else {
                // Zero or garbage vectors carry no direction: treat them as dissimilar to all.
                for j in 0..<dimension { row[j] = 0 }
                return
            }
            let scale = 1 / squared.squareRoot()
            for j in 0..<dimension { row[j] *= scale }
        }
    }

    /// Convenience for tests and tools: appends an item whose vector is an array.
    public mutating func append(
        _ attributes: ItemAttributes, relevance: Float, vector: [Float], role: CandidateRole = .retrieved
    ) {
        vector.withUnsafeBufferPointer { append(attributes, relevance: relevance, vector: $0, role: role) }
    }

    /// The attributes of candidate `index` (`0 ..< count`).
    public func attributes(at index: Int) -> ItemAttributes {
        ItemAttributes(
            row: rows[index], category: categories[index], brand: brands[index], inStock: inStock[index],
            createdAt: createdAt[index], tags: tags[index])
    }

    private mutating func appendAttributes(_ a: ItemAttributes, relevance score: Float, role: CandidateRole) {
        rows.append(a.row)
        relevance.append(score)
        categories.append(a.category)
        brands.append(a.brand)
        inStock.append(a.inStock)
        createdAt.append(a.createdAt)
        tags.append(a.tags)
        roles.append(role)
    }
}

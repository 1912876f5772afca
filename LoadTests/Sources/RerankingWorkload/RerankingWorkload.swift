import Foundation
public import Reranking
import SeededRandom

/// Synthetic re-ranking inputs shared by the re-ranking benchmark and the quality sweep.
///
/// A catalogue of items in `categories` clusters (vector = category centre + noise), one user
/// whose taste mixes three categories, and the `count` items most similar to that taste as the
/// candidate set — the shape retrieval hands to the re-ranker: relevant, and clumped by category.
public struct RerankingWorkload {
    public let candidates: CandidateSet
    public let dimension: Int

    /// - Parameters:
    ///   - seed: everything is a function of it.
    ///   - count: candidates kept (the best `count` of a pool of `4 × count`).
    public init(seed: UInt64, count: Int, dimension: Int = 64, categories: Int = 20, brands: Int = 30) {
        var random = Xoshiro(seed: seed)
        self.dimension = dimension
        let centres = (0..<categories).map { _ in (0..<dimension).map { _ in random.gaussian() } }
        var taste = [Float](repeating: 0, count: dimension)
        for _ in 0..<3 {
            let centre = centres[Int.random(in: 0..<categories, using: &random)]
            for j in 0..<dimension { taste[j] += centre[j] }
        }
        for j in 0..<dimension { taste[j] += 0.5 * random.gaussian() }
        struct Item {
            var attributes: ItemAttributes
            var vector: [Float]
            var relevance: Float
        }
        var pool: [Item] = []
        for row in 0..<(4 * count) {
            let category = Int.random(in: 0..<categories, using: &random)
            let vector = (0..<dimension).map { centres[category][$0] + 0.8 * random.gaussian() }
            let attributes = ItemAttributes(
                row: Int32(row), category: Int32(category), brand: Int32.random(in: 0..<Int32(brands), using: &random),
                inStock: Int.random(in: 0..<20, using: &random) != 0,
                createdAt: Self.now - Int64.random(in: 0..<(90 * 86_400), using: &random),
                tags: UInt64.random(in: 0...UInt64.max, using: &random))
            pool.append(Item(attributes: attributes, vector: vector, relevance: Self.cosine(taste, vector)))
        }
        pool.sort { $0.relevance != $1.relevance ? $0.relevance > $1.relevance : $0.attributes.row < $1.attributes.row }
        var set = CandidateSet(dimension: dimension, reservingCapacity: count + 1)
        for item in pool.prefix(count) {
            set.append(item.attributes, relevance: item.relevance, vector: item.vector)
        }
        // One sponsored item from outside the candidate set, for the pin in `typicalRules`.
        let outsider = pool[pool.count - 1]
        set.append(outsider.attributes, relevance: outsider.relevance, vector: outsider.vector, role: .pinOnly)
        candidates = set
        sponsoredRow = outsider.attributes.row
    }

    /// The row of the `.pinOnly` item.
    public let sponsoredRow: Int32

    /// "Now" for freshness boosts, fixed so results reproduce.
    public static let now: Int64 = 1_800_000_000

    /// The rules of a typical feed request: ten seen items excluded, out-of-stock excluded, a
    /// category cap of max(3, k/4), a category boost, a freshness boost and one sponsored pin.
    public func typicalRules(k: Int) -> RerankRules {
        RerankRules(
            excludedRows: (0..<10).map { candidates.rows[$0 * 3] }, excludeOutOfStock: true,
            maxPerCategory: max(3, k / 4),
            boosts: [
                Boost(.category(candidates.categories[0]), .multiply(1.1)), Boost(.createdWithin(days: 7), .add(0.02)),
            ],
            pins: [Pin(row: sponsoredRow, position: min(2, k - 1), label: .sponsored)])
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        var dot: Float = 0
        var na: Float = 0
        var nb: Float = 0
        for j in a.indices {
            dot += a[j] * b[j]
            na += a[j] * a[j]
            nb += b[j] * b[j]
        }
        return dot / (na * nb).squareRoot()
    }
}

/// xoshiro256** seeded through SplitMix64: reproducible, not cryptographic.
public struct Xoshiro: RandomNumberGenerator {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var seeder = SplitMix64(seed: seed)
        s = (seeder.next(), seeder.next(), seeder.next(), seeder.next())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// A standard normal sample (Box–Muller).
    public mutating func gaussian() -> Float {
        let u = Double.random(in: .ulpOfOne..<1, using: &self)
        let v = Double.random(in: 0..<1, using: &self)
        return Float((-2 * log(u)).squareRoot() * cos(2 * .pi * v))
    }
}

import Foundation
import MappedStorage
import SeededRandom

/// Sizes and seed of a synthetic demo catalogue.
public struct SyntheticDataOptions: Sendable {
    public var users = 50_000
    public var items = 20_000
    public var dimension = 32
    public var seed: UInt64 = 42
    public var categories = 20
    /// Brands per category.
    public var brandsPerCategory = 5

    public init() {}
}

/// The four input files `SyntheticData.write` produces.
public struct SyntheticDataFiles: Sendable {
    public var users: String
    public var userIds: String
    public var items: String
    public var itemsMeta: String
}

/// Deterministic demo data shaped like a real catalogue: embeddings clustered by category with
/// log-normally varying norms (as matrix-factorisation factors have), Zipf-distributed categories and
/// brands, log-normal prices, ~90% in stock, heavy-tailed popularity, up to three of 16 tags, and
/// creation times spread over a year. The same options always produce byte-identical files.
public enum SyntheticData {
    static let tagNames = [
        "new", "sale", "eco", "premium", "bestseller", "limited", "gift", "bundle",
        "clearance", "exclusive", "handmade", "imported", "local", "organic", "refurbished", "seasonal",
    ]

    /// Writes `users.npy`, `users.txt`, `items.npy` and `items.jsonl` into `directory` (created if needed).
    public static func write(_ options: SyntheticDataOptions, to directory: String) throws(SnapshotError)
        -> SyntheticDataFiles
    {
        guard options.users >= 0, options.items >= 0, options.dimension > 0, options.categories > 0,
            options.brandsPerCategory > 0
        else {
            throw .invalidArgument(name: "synth sizes", reason: "counts must be ≥ 0, dimension/categories/brands ≥ 1")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .invalidArgument(name: "out", reason: "cannot create \(directory): \(error.localizedDescription)")
        }
        let files = SyntheticDataFiles(
            users: directory + "/users.npy", userIds: directory + "/users.txt",
            items: directory + "/items.npy", itemsMeta: directory + "/items.jsonl")
        var random = SplitMix64(seed: options.seed)
        let dimension = options.dimension
        let centers = (0..<options.categories).map { _ in random.unitVector(dimension) }
        let categoryDistribution = Zipf(count: options.categories, exponent: 1.1)
        let brandDistribution = Zipf(count: options.brandsPerCategory, exponent: 1.2)

        func writeVectors(_ path: String, rows: Int, categoryOf: (Int) -> Int, spread: Float) throws(SnapshotError) {
            try mappingErrors {
                let writer = try FileWriter(path: path)
                try writer.write(NPYHeader.encodeFloat32Header(rows: rows, columns: dimension))
                var row = [Float](repeating: 0, count: dimension)
                for index in 0..<rows {
                    let center = centers[categoryOf(index)]
                    let norm = Float(exp(0.4 * random.gaussian()))
                    var squares: Float = 0
                    for d in 0..<dimension {
                        row[d] = center[d] + spread * Float(random.gaussian()) / Float(dimension).squareRoot()
                        squares += row[d] * row[d]
                    }
                    let scale = norm / max(squares.squareRoot(), 1e-6)
                    for d in 0..<dimension { row[d] *= scale }
                    try writer.write(contentsOf: row)
                }
                try writer.finish()
            }
        }

        var itemCategories: [Int] = []
        itemCategories.reserveCapacity(options.items)
        try mappingErrors {
            let meta = try FileWriter(path: files.itemsMeta)
            for index in 0..<options.items {
                let category = categoryDistribution.sample(&random)
                itemCategories.append(category)
                let brand = brandDistribution.sample(&random)
                let cents = Int((exp(3.4 + 0.8 * random.gaussian()) * 100).rounded())
                let inStock = random.uniform() < 0.9
                let popularity = (pow(1 / max(random.uniform(), 1e-9), 1 / 1.2) * 100).rounded() / 100
                let createdAt = 1_700_000_000 + Int(random.next() % 31_536_000)
                var tags: [String] = []
                for _ in 0..<Int(random.next() % 4) {
                    let tag = tagNames[Int(random.next() % UInt64(tagNames.count))]
                    if !tags.contains(tag) { tags.append(tag) }
                }
                let tagList = tags.map { "\"\($0)\"" }.joined(separator: ",")
                let price = "\(cents / 100).\(cents % 100 < 10 ? "0" : "")\(cents % 100)"
                let line =
                    "{\"id\":\"sku-\(index)\",\"category\":\"category-\(category)\",\"brand\":\"brand-\(category)-\(brand)\","
                    + "\"price\":\(price),\"in_stock\":\(inStock),\"popularity\":\(popularity),\"created_at\":\(createdAt),"
                    + "\"tags\":[\(tagList)]}\n"
                try meta.write(Array(line.utf8))
            }
            try meta.finish()
            let ids = try FileWriter(path: files.userIds)
            for index in 0..<options.users { try ids.write(Array("u_\(index)\n".utf8)) }
            try ids.finish()
        }
        try writeVectors(files.items, rows: options.items, categoryOf: { itemCategories[$0] }, spread: 0.8)
        // Users lean towards a favourite category, a little more loosely than items.
        var userCategories = [Int](repeating: 0, count: options.users)
        for index in 0..<options.users { userCategories[index] = categoryDistribution.sample(&random) }
        try writeVectors(files.users, rows: options.users, categoryOf: { userCategories[$0] }, spread: 1.2)
        return files
    }
}

/// The samplers the generator needs. Fixed algorithms: changing them changes the demo data.
extension SplitMix64 {
    /// Standard normal (Box–Muller, one of the pair).
    mutating func gaussian() -> Double {
        let radius = (-2 * log(max(uniform(), 1e-300))).squareRoot()
        return radius * cos(2 * Double.pi * uniform())
    }

    mutating func unitVector(_ dimension: Int) -> [Float] {
        let raw = (0..<dimension).map { _ in Float(gaussian()) }
        let norm = max(raw.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-6)
        return raw.map { $0 / norm }
    }
}

/// Samples ranks 0..<count with probability ∝ 1 / (rank + 1)^exponent.
struct Zipf {
    private let cumulative: [Double]

    init(count: Int, exponent: Double) {
        var total = 0.0
        cumulative = (0..<count).map { rank in
            total += 1 / pow(Double(rank + 1), exponent)
            return total
        }
    }

    func sample(_ random: inout SplitMix64) -> Int {
        let target = random.uniform() * cumulative[cumulative.count - 1]
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let mid = (low + high) / 2
            if cumulative[mid] <= target { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

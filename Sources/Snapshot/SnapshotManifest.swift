public import Foundation
public import VectorIndex

/// `manifest.json`: what a snapshot holds and how it was built. Small; decoded at open.
///
/// Every binary file is listed with its exact size (checked at open) and its xxHash64 (seed 0, as 16
/// lowercase hex digits; checked by `Snapshot.verifyChecksums()`).
public struct SnapshotManifest: Codable, Sendable, Equatable {
    /// The format version this build writes and reads.
    public static let currentFormatVersion = 2

    public struct Counts: Codable, Sendable, Equatable {
        public var users: Int
        public var items: Int
        public var categories: Int
        public var brands: Int
        public var tags: Int
    }

    public struct FileEntry: Codable, Sendable, Equatable {
        /// File name inside the snapshot directory.
        public var name: String
        /// Exact size in bytes.
        public var size: Int
        /// xxHash64 (seed 0) of the whole file, 16 lowercase hex digits.
        public var xxh64: String
    }

    public struct BuildInfo: Codable, Sendable, Equatable {
        /// HNSW parameters, or nil when the snapshot has no graph.
        public var hnsw: HNSWParameters?
        /// Worker threads used for the graph (the graph does not depend on it).
        public var threads: Int
        /// Seconds the build took.
        public var seconds: Double
        /// Input file paths as given.
        public var inputs: [String: String]
        /// JSON fields in the item metadata that were not stored as columns (sorted, at most 50).
        public var ignoredItemFields: [String]
        /// The item counts from which a category or brand got a value index with a quantised block, and one with
        /// an HNSW graph too (0: none built); nil in snapshots built before value indexes existed.
        public var quantisedMinItems: Int?
        public var subgraphMinItems: Int?
        /// The partition count of `partitions.ivf`; nil when the snapshot has none.
        public var partitions: Int?
        /// Seconds spent writing `item_walk.i8`; nil when the snapshot has none.
        public var walkVectorsSeconds: Double?
    }

    public var formatVersion: Int
    /// The snapshot's version (its directory name unless given explicitly).
    public var snapshotVersion: String
    /// When the build finished, ISO 8601 UTC.
    public var createdAt: String
    public var dimension: Int
    public var metric: Metric
    public var vectorType: VectorElementType
    public var counts: Counts
    public var build: BuildInfo
    /// Ranking defaults and experiments, opaque here; the engine decodes it (see `rankingConfigJSON`).
    public var ranking: JSONValue
    /// Free-form labels (model name, training run, ...).
    public var labels: [String: String]
    public var files: [FileEntry]

    /// The ranking config as JSON bytes, for the engine to decode into its own type.
    public var rankingConfigJSON: Data {
        // Encoding a JSONValue cannot fail: it only holds JSON-representable values.
        (try? JSONEncoder().encode(ranking)) ?? Data("{}".utf8)
    }

    /// Decodes manifest bytes and checks what every reader relies on: the format version and the
    /// dimension range. `file` names the source in errors.
    /// - Throws: `SnapshotError.manifest` naming the missing or bad field.
    public static func parse(_ data: Data, file: String) throws(SnapshotError) -> SnapshotManifest {
        let manifest: SnapshotManifest
        do {
            manifest = try JSONDecoder().decode(SnapshotManifest.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw .manifest(file: file, reason: "missing field \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
            let DecodingError.dataCorrupted(context)
        {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw .manifest(file: file, reason: "field \"\(field)\": \(context.debugDescription)")
        } catch {
            throw .manifest(file: file, reason: "\(error)")
        }
        guard manifest.formatVersion == SnapshotManifest.currentFormatVersion else {
            throw .manifest(
                file: file,
                reason: "format version \(manifest.formatVersion) is not supported "
                    + "(this build reads \(SnapshotManifest.currentFormatVersion))")
        }
        guard manifest.dimension > 0, manifest.dimension <= 65_536 else {
            throw .manifest(file: file, reason: "dimension \(manifest.dimension) out of range 1...65536")
        }
        return manifest
    }

    /// The ranking config stored when the build is given none.
    public static let defaultRankingConfig: JSONValue = .object([
        "k": .number(20),
        "poolSize": .number(200),
        "method": .string("mmr"),
        "tradeoff": .number(0.7),
        "experiments": .array([]),
    ])
}

/// The fixed file names of a snapshot directory.
public enum SnapshotFiles {
    public static let manifest = "manifest.json"
    public static let userVectors = "user_vectors.vec"
    public static let userIds = "user_ids.ids"
    public static let itemVectors = "item_vectors.vec"
    public static let itemIds = "item_ids.ids"
    public static let itemAttributes = "item_attributes.col"
    public static let categories = "categories.ids"
    public static let brands = "brands.ids"
    public static let tags = "tags.ids"
    public static let popularity = "popularity.pop"
    public static let graph = "item_graph.hnsw"
    /// Brand posting lists and per-category/brand value indexes (optional; snapshots built before it lack it).
    public static let filterIndex = "filter_index.fidx"
    /// The items grouped into partitions for deep pools (optional).
    public static let partitions = "partitions.ivf"
    /// An `i8` copy of the item vectors in row order that the HNSW walk scores (optional; docs/INDEX.md
    /// "Quantised walk").
    public static let walkVectors = "item_walk.i8"

    /// Files every snapshot has (the graph is optional).
    static let required = [
        userVectors, userIds, itemVectors, itemIds, itemAttributes, categories, brands, tags, popularity,
    ]
}

extension UInt64 {
    /// 16 lowercase hex digits.
    var hex16: String {
        let digits = String(self, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

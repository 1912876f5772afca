import Foundation
import MappedStorage
public import VectorIndex

/// An opened snapshot: every binary file mapped read-only, headers validated, nothing else read.
///
/// `open` costs one `mmap` per file plus O(categories) header checks — no vector, id or column page
/// is touched — so it takes milliseconds for millions of rows. Before making a snapshot serve
/// traffic, call `verifyChecksums()` and `verifyStructure()` (publish/activation, `rankctl verify`),
/// `loadGraph()`, then `prefault()`.
///
/// Thread safety: immutable and `Sendable`; every accessor may be called from any thread. The
/// mappings are released (munmap) when the last reference to this object goes, so hold a reference
/// for as long as you use any buffer, column or table obtained from it.
/// (`@unchecked`: every stored property is an immutable `let`; the raw buffers point into mappings
/// this object owns and never mutates.)
public final class Snapshot: @unchecked Sendable {
    /// The snapshot directory.
    public let directory: String
    public let manifest: SnapshotManifest
    /// User embeddings, one row per user id.
    public let userVectors: VectorTable
    /// User id ↔ row.
    public let userIds: IdTable
    /// Item embeddings, one row per item id.
    public let itemVectors: VectorTable
    /// Item id ↔ row.
    public let itemIds: IdTable
    /// Item attribute columns (category, brand, price, stock, popularity, created-at, tags).
    public let attributes: ItemAttributes
    /// Category name ↔ category id (the ids stored in `attributes.category`).
    public let categories: IdTable
    /// Brand name ↔ brand id.
    public let brands: IdTable
    /// Tag name ↔ tag id (bit position in `attributes.tags`).
    public let tags: IdTable
    /// Global and per-category popularity lists and per-category posting lists.
    public let popularity: PopularityLists
    /// The serialized HNSW graph payload in place, or nil when the snapshot has no graph.
    public let graphPayload: UnsafeRawBufferPointer?
    /// Brand posting lists and category/brand value indexes, or nil for a snapshot built without them.
    public let filterIndex: FilterIndex?
    /// The items grouped into partitions for deep pools (docs/INDEX.md "Partitions"), or nil when built without.
    public let partitions: PartitionFile?
    /// The `i8` copy of the item vectors the graph walk scores (docs/INDEX.md "Quantised walk"), or nil when built
    /// without.
    public let walkVectors: WalkVectorsFile?
    private let mappedFiles: [(name: String, file: MappedFile)]

    /// Embedding dimension (users and items).
    public var dimension: Int { manifest.dimension }
    /// The similarity metric the snapshot was built for.
    public var metric: Metric { manifest.metric }

    /// Opens the snapshot in `directory`.
    /// - Throws: `SnapshotError` naming the file and offset of the first problem (missing file, size
    ///   different from the manifest, bad header, section outside its file, counts that disagree).
    ///   Nothing stays mapped after a failure.
    /// - Complexity: O(files + categories); reads the manifest and each file's header page only.
    public static func open(directory: String) throws(SnapshotError) -> Snapshot {
        try Snapshot(directory: directory)
    }

    private init(directory: String) throws(SnapshotError) {
        self.directory = directory
        let manifest = try Self.readManifest(directory: directory)
        self.manifest = manifest
        var mapped: [(name: String, file: MappedFile)] = []
        var sections: [String: SectionFile] = [:]
        for entry in manifest.files {
            let kind = try Self.kind(of: entry.name, manifest: SnapshotFiles.manifest)
            guard sections[entry.name] == nil else {
                throw .manifest(file: SnapshotFiles.manifest, reason: "file \(entry.name) is listed twice")
            }
            let file = try mappingErrors { try MappedFile(path: directory + "/" + entry.name) }
            guard file.count == entry.size else {
                throw .corrupt(
                    file: entry.name, offset: file.count,
                    reason: "file is \(file.count) bytes, manifest says \(entry.size)")
            }
            mapped.append((entry.name, file))
            sections[entry.name] = try SectionFile(file: file, name: entry.name, kind: kind)
        }
        for name in SnapshotFiles.required where sections[name] == nil {
            throw .manifest(file: SnapshotFiles.manifest, reason: "files list lacks \(name)")
        }
        mappedFiles = mapped
        func section(_ name: String) -> SectionFile { sections[name]! }  // presence checked above

        userVectors = try VectorTable(section(SnapshotFiles.userVectors))
        itemVectors = try VectorTable(section(SnapshotFiles.itemVectors))
        userIds = try IdTable(section(SnapshotFiles.userIds))
        itemIds = try IdTable(section(SnapshotFiles.itemIds))
        categories = try IdTable(section(SnapshotFiles.categories))
        brands = try IdTable(section(SnapshotFiles.brands))
        tags = try IdTable(section(SnapshotFiles.tags))
        attributes = try ItemAttributes(
            section(SnapshotFiles.itemAttributes), categories: categories.count, brands: brands.count, tags: tags.count)
        popularity = try PopularityLists(
            section(SnapshotFiles.popularity), rows: attributes.count, categories: categories.count)
        if let graph = sections[SnapshotFiles.graph] {
            guard graph.parameters[0] == UInt64(itemVectors.count) else {
                throw .corrupt(
                    file: graph.name, offset: 32,
                    reason: "graph row count \(graph.parameters[0]) ≠ \(itemVectors.count) items")
            }
            graphPayload = graph.section(0).bytes
        } else {
            graphPayload = nil
        }
        if let file = sections[SnapshotFiles.filterIndex] {
            filterIndex = try FilterIndex(
                file, rows: attributes.count, brands: brands.count, categories: categories.count,
                dimension: itemVectors.dimension)
        } else {
            filterIndex = nil
        }
        if let file = sections[SnapshotFiles.partitions] {
            partitions = try PartitionFile(file, rows: attributes.count, dimension: itemVectors.dimension)
        } else {
            partitions = nil
        }
        if let file = sections[SnapshotFiles.walkVectors] {
            walkVectors = try WalkVectorsFile(file, rows: itemVectors.count, dimension: itemVectors.dimension)
        } else {
            walkVectors = nil
        }
        try checkCounts()
    }

    private func checkCounts() throws(SnapshotError) {
        let counts = manifest.counts
        let checks: [(String, Int, Int)] = [
            (SnapshotFiles.userVectors, userVectors.count, counts.users),
            (SnapshotFiles.userIds, userIds.count, counts.users),
            (SnapshotFiles.itemVectors, itemVectors.count, counts.items),
            (SnapshotFiles.itemIds, itemIds.count, counts.items),
            (SnapshotFiles.itemAttributes, attributes.count, counts.items),
            (SnapshotFiles.categories, categories.count, counts.categories),
            (SnapshotFiles.brands, brands.count, counts.brands),
            (SnapshotFiles.tags, tags.count, counts.tags),
        ]
        for (file, actual, expected) in checks where actual != expected {
            throw .corrupt(file: file, offset: 32, reason: "holds \(actual) rows, manifest says \(expected)")
        }
        for (file, table) in [(SnapshotFiles.userVectors, userVectors), (SnapshotFiles.itemVectors, itemVectors)] {
            guard table.dimension == manifest.dimension, table.elementType == manifest.vectorType else {
                throw .corrupt(
                    file: file, offset: 40,
                    reason: "dimension/type \(table.dimension)/\(table.elementType) "
                        + "≠ manifest \(manifest.dimension)/\(manifest.vectorType)")
            }
        }
        guard counts.tags <= 64 else { throw .manifest(file: SnapshotFiles.manifest, reason: "more than 64 tags") }
    }

    static func kind(of name: String, manifest: String) throws(SnapshotError) -> SnapshotFileKind {
        switch name {
        case SnapshotFiles.userVectors, SnapshotFiles.itemVectors: .vectors
        case SnapshotFiles.userIds, SnapshotFiles.itemIds, SnapshotFiles.categories, SnapshotFiles.brands,
            SnapshotFiles.tags:
            .idTable
        case SnapshotFiles.itemAttributes: .attributes
        case SnapshotFiles.popularity: .popularity
        case SnapshotFiles.graph: .graph
        case SnapshotFiles.filterIndex: .filterIndex
        case SnapshotFiles.partitions: .partitions
        case SnapshotFiles.walkVectors: .walkVectors
        default: throw .manifest(file: manifest, reason: "unknown file \"\(name)\" in files list")
        }
    }

    /// Reads and checks `manifest.json` in `directory` (see ``SnapshotManifest/parse(_:file:)``).
    public static func readManifest(directory: String) throws(SnapshotError) -> SnapshotManifest {
        let path = directory + "/" + SnapshotFiles.manifest
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .manifest(file: path, reason: "cannot read: \(error.localizedDescription)")
        }
        return try SnapshotManifest.parse(data, file: path)
    }

    // MARK: - Activation support

    /// Makes every mapped page resident (`MADV_WILLNEED` then one read per page), so requests after
    /// activation take no page faults. O(total bytes / page size); blocks on disk I/O if pages are cold.
    /// - Returns: pages touched.
    @discardableResult
    public func prefault() -> Int {
        mappedFiles.reduce(0) { $0 + $1.file.prefault() }
    }

    /// Recomputes every file's xxHash64 and compares with the manifest. O(total bytes), single-threaded
    /// (a few GB/s when resident).
    /// - Throws: `.checksumMismatch` naming the first file that differs.
    public func verifyChecksums() throws(SnapshotError) {
        for entry in manifest.files {
            guard let file = mappedFiles.first(where: { $0.name == entry.name })?.file else { continue }
            let actual = XXHash64.hash(file.bytes).hex16
            guard actual == entry.xxh64.lowercased() else {
                throw .checksumMismatch(file: entry.name, expected: entry.xxh64, actual: actual)
            }
        }
    }

    /// Deep structural checks that `open` skips to stay O(1): every id table resolves each id to its
    /// own row, attribute ids are inside their dictionaries, popularity and posting lists are sorted
    /// permutations of the right rows. O(users + items · log items). Run before activation.
    public func verifyStructure() throws(SnapshotError) {
        try userIds.verify(name: SnapshotFiles.userIds)
        try itemIds.verify(name: SnapshotFiles.itemIds)
        try categories.verify(name: SnapshotFiles.categories)
        try brands.verify(name: SnapshotFiles.brands)
        try tags.verify(name: SnapshotFiles.tags)
        try attributes.verify(
            name: SnapshotFiles.itemAttributes, categories: categories.count, brands: brands.count, tags: tags.count)
        try popularity.verify(name: SnapshotFiles.popularity, attributes: attributes)
        try filterIndex?.verify(attributes: attributes, popularity: popularity, vectors: itemVectors.matrix)
        try partitions?.verify(vectors: itemVectors.matrix)
        try walkVectors?.verify(vectors: itemVectors.matrix)
    }

    /// Validates and returns the partition index over `itemVectors` (O(items)), or nil when the snapshot has none.
    /// Reads the mapping in place, valid while this snapshot is alive.
    public func loadPartitions() throws(SnapshotError) -> PartitionIndex? {
        try partitions?.index(matrixRows: itemVectors.count)
    }

    /// Validates and returns the ANN graph over `itemVectors` (O(items × M): every neighbour id is
    /// checked), or nil when the snapshot has none. The graph reads the mapping in place and is valid
    /// while this snapshot is alive.
    public func loadGraph() throws(SnapshotError) -> HNSWGraph? {
        guard let graphPayload else { return nil }
        let graph: HNSWGraph
        do {
            graph = try HNSWGraph(bytes: graphPayload, rowCount: itemVectors.count)
        } catch {
            throw .graph(file: SnapshotFiles.graph, reason: "\(error)")
        }
        guard graph.byteCount == graphPayload.count else {
            throw .graph(
                file: SnapshotFiles.graph,
                reason: "graph uses \(graph.byteCount) bytes of a \(graphPayload.count)-byte section")
        }
        guard graph.metric == manifest.metric else {
            throw .graph(
                file: SnapshotFiles.graph, reason: "graph metric \(graph.metric) ≠ manifest \(manifest.metric)")
        }
        return graph
    }

    /// Validates and returns every category and brand value index (O(Σ rows × M) for those with a graph, O(Σ rows)
    /// for the rest), in directory order; empty when the snapshot has none. Like `loadGraph()`, they read the
    /// mapping in place.
    /// - Throws: `.graph` naming the file and the value at fault.
    public func loadValueIndexes() throws(SnapshotError) -> [(entry: FilterIndex.Entry, index: SubsetIndex)] {
        guard let filterIndex else { return [] }
        var loaded: [(entry: FilterIndex.Entry, index: SubsetIndex)] = []
        for entry in filterIndex.entries {
            loaded.append(
                (entry, try filterIndex.valueIndex(entry, metric: manifest.metric, matrixRows: itemVectors.count)))
        }
        return loaded
    }

    /// Sizes of the mapped files, by name (for `rankctl inspect` and metrics).
    public var fileSizes: [(name: String, bytes: Int)] {
        mappedFiles.map { ($0.name, $0.file.count) }
    }
}

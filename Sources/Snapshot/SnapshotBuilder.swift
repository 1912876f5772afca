import Foundation
import MappedStorage
public import VectorIndex

/// What to build and how. Paths are used as given.
public struct SnapshotBuildOptions: Sendable {
    /// `users.npy`: float32/float64, C order, shape (users, dimension).
    public var users: String
    /// `users.txt`: one user id per line, in row order.
    public var userIds: String
    /// `items.npy`: shape (items, dimension).
    public var items: String
    /// `items.jsonl`: one JSON object per item, in row order (see `ItemRecord`).
    public var itemsMeta: String
    /// The snapshot directory to create; must not exist.
    public var output: String
    /// How vectors are stored (`VectorCodec` layout); f32 by default.
    public var vectorType: VectorElementType = .f32
    /// The similarity metric recorded in the manifest and used for the graph; ip by default.
    public var metric: Metric = .ip
    /// Defaults to the output directory's name.
    public var snapshotVersion: String?
    /// Opaque ranking config (must be a JSON object); nil stores `SnapshotManifest.defaultRankingConfig`.
    public var rankingConfig: JSONValue?
    /// Free-form manifest labels (model name, training run, ...).
    public var labels: [String: String] = [:]
    /// Build the HNSW graph over the item vectors.
    public var buildIndex = true
    /// HNSW build parameters (ignored when `buildIndex` is false).
    public var hnsw = HNSWParameters()
    /// Categories and brands with at least this many items get a value index (docs/INDEX.md "Attribute
    /// subgraphs"): their rows and a quantised `i8` copy of their vectors, which a filter on them scans instead of
    /// gathering f32 rows through a posting list; 0 builds none. Below the default, an f32 scan of the value's
    /// posting list costs ≤ ~0.1 ms.
    public var quantisedMinItems = SnapshotBuildOptions.defaultQuantisedMinItems
    public static let defaultQuantisedMinItems = 2_000
    /// Categories and brands with at least this many items also get an HNSW graph over their rows (with the global
    /// graph only), for values too large to scan; 0 builds none. The default is where the quantised scan stops
    /// fitting a few milliseconds (`QuantisedScan.maxRows`).
    public var subgraphMinItems = SnapshotBuildOptions.defaultSubgraphMinItems
    public static let defaultSubgraphMinItems = QuantisedScan.maxRows
    /// Partitions for deep pools (docs/INDEX.md "Partitions"): nil picks about √items, 0 builds none. Built only
    /// for catalogues of at least `partitionMinItems` items (below that an exact scan is cheap).
    public var partitions: Int? = nil
    public var partitionMinItems = SnapshotBuildOptions.defaultPartitionMinItems
    public static let defaultPartitionMinItems = 50_000
    /// With the graph, also write an `i8` copy of the item vectors for the walk to score (docs/INDEX.md "Quantised
    /// walk"); not written when the vectors are stored as `i8` already.
    public var int8Walk = true
    /// Write the int8 walk copy only when the item vectors take at least this many bytes as f32 (rows × dimension
    /// × 4). Measured (docs/BENCHMARKS.md, docs/INDEX.md "Quantised walk"): at 1M × 64 (256 MB) the int8 walk
    /// takes queries per CPU-second from 1.16× to 1.60× hnswlib's; at 100k × 64 (25.6 MB, inside this machine's
    /// 32 MiB L3) it cost more than it saved (1.13× against 1.37× with the f32 walk). 0: always.
    public var int8WalkMinVectorBytes = SnapshotBuildOptions.defaultInt8WalkMinVectorBytes
    public static let defaultInt8WalkMinVectorBytes = 64 << 20
    /// Worker threads for the graph build; the graph does not depend on it.
    public var threads = max(1, ProcessInfo.processInfo.activeProcessorCount)

    public init(users: String, userIds: String, items: String, itemsMeta: String, output: String) {
        self.users = users
        self.userIds = userIds
        self.items = items
        self.itemsMeta = itemsMeta
        self.output = output
    }
}

/// A build step and how far it got, for progress output.
public struct SnapshotBuildProgress: Sendable {
    /// What is being built ("item catalogue", "user vectors", "item graph", ...).
    public var stage: String
    /// Rows done so far in this stage.
    public var done: Int
    /// Rows in this stage.
    public var total: Int
}

/// Compiles embeddings (`.npy`) and a catalogue (JSON Lines) into a snapshot directory.
///
/// Inputs are streamed (vectors in 4 MiB blocks, text line by line); what is held in memory is what
/// the output needs anyway (ids, attribute columns, the graph), so peak memory stays near the output
/// size minus the vectors. Everything is written into a hidden temporary directory beside `output`
/// and renamed into place only when complete and checksummed; on any error the temporary directory
/// is removed and `output` does not exist.
public enum SnapshotBuilder {
    /// Builds the snapshot and returns its manifest.
    @discardableResult
    /// - Throws: `SnapshotError` naming the input file and row/line/field at fault.
    public static func build(
        _ options: SnapshotBuildOptions,
        progress: (@Sendable (SnapshotBuildProgress) -> Void)? = nil
    ) throws(SnapshotError) -> SnapshotManifest {
        let fileManager = FileManager.default
        let output = options.output.hasSuffix("/") ? String(options.output.dropLast()) : options.output
        guard !output.isEmpty else { throw .invalidArgument(name: "output", reason: "empty path") }
        guard !fileManager.fileExists(atPath: output) else { throw .outputExists(path: output) }
        let url = URL(fileURLWithPath: output)
        let parent = url.deletingLastPathComponent().path
        let temporaryPrefix = "." + url.lastPathComponent + ".tmp-"
        removeAbandonedTemporaries(in: parent, prefix: temporaryPrefix)
        let temporary =
            parent + "/" + temporaryPrefix + "\(ProcessInfo.processInfo.processIdentifier)-"
            + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        do {
            try fileManager.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        } catch {
            throw .invalidArgument(name: "output", reason: "cannot create \(temporary): \(error.localizedDescription)")
        }
        do {
            var job = BuildJob(options: options, directory: temporary, progress: progress)
            let manifest = try job.run(version: options.snapshotVersion ?? url.lastPathComponent)
            try mappingErrors {
                try FileSystemOps.rename(temporary, to: output)
                try FileSystemOps.syncDirectory(parent)
            }
            return manifest
        } catch {
            try? fileManager.removeItem(atPath: temporary)
            throw error
        }
    }

    /// Removes `prefix<pid>-<random>` directories in `parent` whose builder process is gone: a build
    /// killed with SIGKILL (or a crash, or a power cut) cannot clean up after itself, so the next
    /// build of the same output does. Directories of live builders are left alone. Best effort.
    static func removeAbandonedTemporaries(in parent: String, prefix: String) {
        guard let names = try? FileSystemOps.list(parent) else { return }
        for name in names where name.hasPrefix(prefix) {
            let pidText = name.dropFirst(prefix.count).prefix { $0 != "-" }
            guard let pid = Int32(pidText), pid > 0, !FileSystemOps.processExists(pid) else { continue }
            try? FileSystemOps.removeTree(parent + "/" + name)
        }
    }
}

/// The state of one build, in the temporary directory.
struct BuildJob {
    let options: SnapshotBuildOptions
    let directory: String
    let progress: (@Sendable (SnapshotBuildProgress) -> Void)?
    let started = Date()
    var ignoredFields: Set<String> = []

    init(options: SnapshotBuildOptions, directory: String, progress: (@Sendable (SnapshotBuildProgress) -> Void)?) {
        self.options = options
        self.directory = directory
        self.progress = progress
    }

    func path(_ name: String) -> String { directory + "/" + name }

    func report(_ stage: String, _ done: Int, _ total: Int) {
        progress?(SnapshotBuildProgress(stage: stage, done: done, total: total))
    }

    mutating func run(version: String) throws(SnapshotError) -> SnapshotManifest {
        if case .object = options.rankingConfig ?? .object([:]) {
        } else {
            throw .invalidArgument(name: "ranking config", reason: "must be a JSON object")
        }
        guard !(options.hnsw.m < 2 || options.hnsw.m > 256 || options.hnsw.efConstruction < 1) else {
            throw .invalidArgument(name: "hnsw", reason: "m must be in 2...256 and efConstruction ≥ 1")
        }
        // Cheap checks first: both .npy headers, so a dimension mismatch fails before any heavy work.
        var users = try NPYRowReader(path: options.users, name: options.users)
        var items = try NPYRowReader(path: options.items, name: options.items)
        guard users.header.columns == items.header.columns else {
            throw .dimensionMismatch(users: users.header.columns, items: items.header.columns)
        }
        let dimension = users.header.columns
        guard dimension <= 65_536 else {
            throw .npy(file: options.users, reason: "dimension \(dimension) exceeds 65536")
        }
        for (reader, file) in [(users, options.users), (items, options.items)]
        where reader.header.rows >= Int(Int32.max) {
            throw .npy(file: file, reason: "\(reader.header.rows) rows exceeds the limit of \(Int32.max - 1)")
        }

        let userCount = try writeUserIds(expectedRows: users.header.rows)
        let counts = try writeCatalogue(expectedRows: items.header.rows)
        try writeVectors(&items, to: SnapshotFiles.itemVectors, stage: "item vectors")
        try writeVectors(&users, to: SnapshotFiles.userVectors, stage: "user vectors")
        var hnsw: HNSWParameters? = nil
        let f32VectorBytes = items.header.rows * items.header.columns * MemoryLayout<Float>.size
        let withWalkVectors =
            options.buildIndex && options.int8Walk && options.vectorType != .i8
            && f32VectorBytes >= options.int8WalkMinVectorBytes
        if options.buildIndex {
            try writeGraph(items: items.header.rows)
            hnsw = options.hnsw
        }
        var walkSeconds: Double?
        if withWalkVectors {
            report("walk vectors", 0, items.header.rows)
            let walkStarted = Date()
            try writeWalkVectors(items: items.header.rows)
            walkSeconds = Date().timeIntervalSince(walkStarted)
        }
        try writeFilterIndex(
            quantisedMinItems: options.quantisedMinItems,
            subgraphMinItems: options.buildIndex ? options.subgraphMinItems : 0)
        let partitionCount = try writePartitions(items: items.header.rows)
        report("checksums", 0, 1)
        var files: [SnapshotManifest.FileEntry] = []
        let optional =
            (options.buildIndex ? [SnapshotFiles.graph] : []) + [SnapshotFiles.filterIndex]
            + (partitionCount != nil ? [SnapshotFiles.partitions] : [])
            + (withWalkVectors ? [SnapshotFiles.walkVectors] : [])
        for name in SnapshotFiles.required + optional {
            let (size, checksum) = try mappingErrors {
                (try FileReader(path: path(name)).size, try XXHash64.hashFile(path: path(name)))
            }
            files.append(.init(name: name, size: size, xxh64: checksum.hex16))
        }
        let manifest = SnapshotManifest(
            formatVersion: SnapshotManifest.currentFormatVersion,
            snapshotVersion: version,
            createdAt: Date().ISO8601Format(),
            dimension: dimension,
            metric: options.metric,
            vectorType: options.vectorType,
            counts: .init(
                users: userCount, items: counts.items, categories: counts.categories,
                brands: counts.brands, tags: counts.tags),
            build: .init(
                hnsw: hnsw, threads: options.threads, seconds: Date().timeIntervalSince(started),
                inputs: [
                    "users": options.users, "userIds": options.userIds, "items": options.items,
                    "itemsMeta": options.itemsMeta,
                ],
                ignoredItemFields: Array(ignoredFields.sorted().prefix(50)),
                quantisedMinItems: options.quantisedMinItems,
                subgraphMinItems: options.buildIndex ? options.subgraphMinItems : 0, partitions: partitionCount,
                walkVectorsSeconds: walkSeconds),
            ranking: options.rankingConfig ?? SnapshotManifest.defaultRankingConfig,
            labels: options.labels,
            files: files)
        try writeManifest(manifest)
        return manifest
    }

    private func writeManifest(_ manifest: SnapshotManifest) throws(SnapshotError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try mappingErrors {
            let writer = try FileWriter(path: path(SnapshotFiles.manifest))
            try writer.write([UInt8](try encoder.encode(manifest)) + [UInt8(ascii: "\n")])
            try writer.finish()
        }
    }

    private func writeUserIds(expectedRows: Int) throws(SnapshotError) -> Int {
        var table = IdTableWriter(sourceFile: options.userIds)
        var lines = try LineReader(path: options.userIds)
        let file = options.userIds
        try lines.forEachLine { (bytes, line) throws(SnapshotError) in
            guard !bytes.isEmpty else { throw .emptyId(file: file, line: line) }
            guard let id = String(validating: bytes, as: UTF8.self) else { throw .invalidUTF8(file: file, line: line) }
            table.append(id, line: line)
        }
        guard table.count == expectedRows else {
            throw .countMismatch(
                file: options.userIds, count: table.count, otherFile: options.users, otherCount: expectedRows)
        }
        report("user ids", table.count, table.count)
        try table.write(to: path(SnapshotFiles.userIds))
        return table.count
    }

    private mutating func writeCatalogue(
        expectedRows: Int
    ) throws(SnapshotError) -> (items: Int, categories: Int, brands: Int, tags: Int) {
        let file = options.itemsMeta
        var ids = IdTableWriter(sourceFile: file)
        var categories = NameDictionary(sourceFile: file)
        var brands = NameDictionary(sourceFile: file)
        var tags = NameDictionary(sourceFile: file)
        var category: [UInt32] = []
        var brand: [UInt32] = []
        var price: [Int64] = []
        var inStock: [UInt8] = []
        var popularity: [Float] = []
        var createdAt: [Int64] = []
        var tagBits: [UInt64] = []
        var ignored = ignoredFields
        var lines = try LineReader(path: file)
        try lines.forEachLine { (bytes, line) throws(SnapshotError) in
            // Blank lines (including a trailing one) are not items.
            if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }
            let record = try ItemRecord.parse(bytes, file: file, line: line)
            ids.append(record.id, line: line)
            category.append(record.category.map { categories.id(for: $0) } ?? ItemAttributes.none)
            brand.append(record.brand.map { brands.id(for: $0) } ?? ItemAttributes.none)
            price.append(record.priceCents ?? ItemAttributes.noPrice)
            inStock.append(record.inStock ? 1 : 0)
            popularity.append(record.popularity)
            createdAt.append(record.createdAt)
            var bits: UInt64 = 0
            for tag in record.tags {
                if tags.existingId(for: tag) == nil, tags.count == 64 {
                    throw .tooManyTags(file: file, line: line, tag: tag)
                }
                bits |= 1 << UInt64(tags.id(for: tag))
            }
            tagBits.append(bits)
            ignored.formUnion(record.unknownFields)
            if ids.count % 100_000 == 0 { report("item catalogue", ids.count, expectedRows) }
        }
        ignoredFields = ignored
        guard ids.count == expectedRows else {
            throw .countMismatch(file: file, count: ids.count, otherFile: options.items, otherCount: expectedRows)
        }
        report("item catalogue", ids.count, expectedRows)
        try ids.write(to: path(SnapshotFiles.itemIds))
        try categories.writer.write(to: path(SnapshotFiles.categories))
        try brands.writer.write(to: path(SnapshotFiles.brands))
        try tags.writer.write(to: path(SnapshotFiles.tags))
        let rows = ids.count
        try mappingErrors {
            let out = try SectionFileWriter(
                path: path(SnapshotFiles.itemAttributes), kind: .attributes,
                parameters: [UInt64(rows), UInt64(categories.count), UInt64(brands.count), UInt64(tags.count)],
                sectionLengths: [4 * rows, 4 * rows, 8 * rows, rows, 4 * rows, 8 * rows, 8 * rows])
            try out.beginSection(); try out.writer.write(contentsOf: category)
            try out.beginSection(); try out.writer.write(contentsOf: brand)
            try out.beginSection(); try out.writer.write(contentsOf: price)
            try out.beginSection(); try out.writer.write(contentsOf: inStock)
            try out.beginSection(); try out.writer.write(contentsOf: popularity)
            try out.beginSection(); try out.writer.write(contentsOf: createdAt)
            try out.beginSection(); try out.writer.write(contentsOf: tagBits)
            try out.finish()
        }
        try writePopularity(category: category, popularity: popularity, categoryCount: categories.count)
        return (rows, categories.count, brands.count, tags.count)
    }

    private func writePopularity(category: [UInt32], popularity: [Float], categoryCount: Int) throws(SnapshotError) {
        let rows = category.count
        func morePopular(_ a: UInt32, _ b: UInt32) -> Bool {
            let pa = popularity[Int(a)]
            let pb = popularity[Int(b)]
            return pa > pb || (pa == pb && a < b)
        }
        let global = (0..<UInt32(rows)).sorted(by: morePopular)
        let (starts, byRow) = Self.postings(count: rows, values: categoryCount) { category[$0] }
        var byPopularity = byRow
        for c in 0..<categoryCount {
            byPopularity[Int(starts[c])..<Int(starts[c + 1])].sort(by: morePopular)
        }
        try mappingErrors {
            let out = try SectionFileWriter(
                path: path(SnapshotFiles.popularity), kind: .popularity,
                parameters: [UInt64(rows), UInt64(categoryCount), UInt64(byRow.count)],
                sectionLengths: [4 * rows, 8 * starts.count, 4 * byRow.count, 4 * byRow.count])
            try out.beginSection(); try out.writer.write(contentsOf: global)
            try out.beginSection(); try out.writer.write(contentsOf: starts)
            try out.beginSection(); try out.writer.write(contentsOf: byPopularity)
            try out.beginSection(); try out.writer.write(contentsOf: byRow)
            try out.finish()
        }
    }

    /// Posting lists of a column by counting sort: value v's rows, ascending, are `rows[starts[v] ..< starts[v+1]]`;
    /// rows whose value is `ItemAttributes.none` are in none. O(count + values).
    static func postings(
        count: Int, values: Int, _ value: (Int) -> UInt32
    ) -> (starts: [UInt64], rows: [UInt32]) {
        var starts = [UInt64](repeating: 0, count: values + 1)
        for row in 0..<count where value(row) != ItemAttributes.none { starts[Int(value(row)) + 1] += 1 }
        for v in 0..<values { starts[v + 1] += starts[v] }
        var cursor = starts.map { Int($0) }
        var list = [UInt32](repeating: 0, count: Int(starts[values]))
        for row in 0..<count where value(row) != ItemAttributes.none {
            list[cursor[Int(value(row))]] = UInt32(row)
            cursor[Int(value(row))] += 1
        }
        return (starts, list)
    }

    /// Streams `.npy` rows into a vectors file, encoding each row with `VectorCodec`.
    private func writeVectors(_ reader: inout NPYRowReader, to name: String, stage: String) throws(SnapshotError) {
        let header = reader.header
        let type = options.vectorType
        let stride = VectorCodec.rowStride(dimension: header.columns, type: type)
        let out = try mappingErrors {
            try SectionFileWriter(
                path: path(name), kind: .vectors,
                parameters: [UInt64(header.rows), UInt64(header.columns), VectorTable.typeCode(type), UInt64(stride)],
                sectionLengths: [header.rows * stride])
        }
        try mappingErrors { try out.beginSection() }
        var floats: [Float] = []
        var encoded: [UInt8] = []
        while true {
            let rows = try reader.nextBlock(into: &floats)
            if rows == 0 { break }
            if encoded.count != rows * stride { encoded = [UInt8](repeating: 0, count: rows * stride) }
            floats.withUnsafeBufferPointer { source in
                encoded.withUnsafeMutableBytes { destination in
                    for row in 0..<rows {
                        VectorCodec.encode(
                            UnsafeBufferPointer(
                                rebasing: source[(row * header.columns)..<((row + 1) * header.columns)]),
                            as: type,
                            into: UnsafeMutableRawBufferPointer(
                                rebasing: destination[(row * stride)..<((row + 1) * stride)]))
                    }
                }
            }
            try mappingErrors { try out.writer.write(encoded) }
            report(stage, reader.nextRow, header.rows)
        }
        try mappingErrors { try out.finish() }
    }
}

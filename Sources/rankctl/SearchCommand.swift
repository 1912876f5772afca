import ArgumentParser
import Dispatch
import Foundation
import Snapshot
import VectorIndex

/// `rankctl search`: batch nearest-item search for benchmarking retrieval.
///
/// Reads item vectors and graph from a snapshot (`--snapshot`), or from a raw `.npy` (`--items`; float32, C order) and
/// an HNSW graph file (`--graph`, built and written first when absent), searches every query of `--queries`, writes the item row numbers of the hits as an
/// int64 `.npy` of shape [queries, k] (-1 where fewer than k passed the filter) and prints queries/second.
struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Batch-search item vectors (HNSW or exact); write hit rows as .npy and print queries/second."
    )

    @Option(help: "Snapshot directory: item vectors, graph and categories (instead of --items).")
    var snapshot: String?

    @Option(help: "Item vectors, float32 .npy of shape [items, dimension] (instead of --snapshot).")
    var items: String?

    @Option(help: "HNSW graph file for --items; built (and written here) when it does not exist.")
    var graph: String?

    @Option(help: "Queries, float32 .npy of shape [queries, dimension].")
    var queries: String

    @Option(help: "Hits per query.")
    var k = 10

    @Option(help: "HNSW beam width at level 0 (efSearch).")
    var ef = 64

    @Option(help: "Search threads (queries are split between them, each with its own scratch).")
    var threads = 1

    @Flag(help: "Exact brute-force search instead of HNSW.")
    var exact = false

    @Option(help: "Similarity metric: ip, cosine or l2 (when building the graph).")
    var metric = "ip"

    @Option(help: "Stored vector type: f32, f16 or i8 (items are encoded from the float32 .npy).")
    var vectorType = "f32"

    @Option(help: "ip graph space when building: hybrid, plain or extraDimension.")
    var ipSpace = "hybrid"

    @Option(help: "HNSW M when building.")
    var m = 16

    @Option(help: "HNSW efConstruction when building.")
    var efConstruction = 200

    @Option(help: "Threads used to build the graph.")
    var buildThreads = 2

    @Option(
        help:
            "Per-item category ids, int64 or int32 .npy of shape [items] (needed by --filter-category with --items; with --snapshot they replace the snapshot's categories)."
    )
    var categories: String?

    @Option(
        help:
            "Keep only items of this category (repeatable): a category id with --snapshot, an integer with --categories."
    )
    var filterCategory: [String] = []

    @Flag(help: "Do not give the search the filter's pass count (forces the filtered graph walk).")
    var noEstimate = false

    @Flag(
        help:
            "Give the search the filter's posting list (its passing rows), as the engine does for one category; with --exact, scan only those rows."
    )
    var posting = false

    @Flag(
        help:
            "Search the snapshot's value index of the one --filter-category (as the engine does for a category that has one)."
    )
    var valueIndex = false

    @Option(
        help: ArgumentHelp(
            "Search the snapshot's partitions, seeing this many passing rows (docs/INDEX.md \"Partitions\").",
            discussion: "With --filter-category the category is the filter; the graph and --ef are not used."))
    var probeRows: Int?

    @Flag(
        help:
            "With --items: walk the graph over an int8 copy of the vectors, then re-score the best candidates exactly (a --snapshot does so when it has item_walk.i8)."
    )
    var quantisedWalk = false

    @Flag(help: "With --snapshot: walk over the stored vectors even when the snapshot has item_walk.i8.")
    var noInt8Walk = false

    @Option(help: "Hit rows, int64 .npy of shape [queries, k].")
    var out: String

    func run() throws {
        guard k >= 1, ef >= 1, threads >= 1 else { throw ValidationError("--k, --ef and --threads must be ≥ 1") }
        guard !(posting && noEstimate) else { throw ValidationError("--posting and --no-estimate exclude each other") }
        guard !valueIndex || (snapshot != nil && filterCategory.count == 1 && !exact) else {
            throw ValidationError("--value-index needs --snapshot and exactly one --filter-category, without --exact")
        }
        guard probeRows == nil || (snapshot != nil && !valueIndex && !exact && probeRows! >= 1) else {
            throw ValidationError("--probe-rows needs --snapshot, is ≥ 1, and excludes --value-index and --exact")
        }
        guard let metric = Metric(rawValue: metric) else { throw ValidationError("--metric must be ip, cosine or l2") }
        guard let type = VectorElementType(rawValue: vectorType) else {
            throw ValidationError("--vector-type must be f32, f16 or i8")
        }
        guard let space = InnerProductGraphSpace(rawValue: ipSpace) else {
            throw ValidationError("--ip-space must be hybrid, plain or extraDimension")
        }
        let queryArray = try NPYArray(path: queries)
        let queryFloats = try queryArray.floats(name: queries)
        guard queryArray.shape.count == 2 else { throw ValidationError("--queries must be 2-D") }
        // Storage behind `matrix` and the graph for --items; the snapshot's mapping for --snapshot.
        var owned: [UnsafeMutableRawBufferPointer] = []
        defer { owned.forEach { $0.deallocate() } }
        let opened: Snapshot?
        let matrix: VectorMatrix
        let index: HNSWIndex?
        let filter: CategoryFilter
        var categoryIndex: SubsetIndex?
        var partitionIndex: PartitionIndex?
        switch (snapshot, items) {
        case (let directory?, nil):
            do {
                let snapshot = try Snapshot.open(directory: directory)
                opened = snapshot
                matrix = snapshot.itemVectors.matrix
                index =
                    try exact || probeRows != nil
                    ? nil
                    : snapshot.loadGraph().map {
                        try HNSWIndex(
                            vectors: matrix, graph: $0, walkVectors: noInt8Walk ? nil : snapshot.walkVectors?.matrix)
                    }
                if !exact && probeRows == nil && index == nil {
                    throw ValidationError("\(directory) has no HNSW graph; use --exact")
                }
                filter = try categories != nil ? categoryFilter(rows: matrix.count) : snapshotCategoryFilter(snapshot)
                if probeRows != nil {
                    partitionIndex = try snapshot.loadPartitions()
                    if partitionIndex == nil { throw ValidationError("\(directory) has no partitions") }
                }
                if valueIndex {
                    let category = snapshot.categories.row(for: filterCategory[0])
                    categoryIndex = try snapshot.loadValueIndexes().first {
                        $0.entry.attribute == .category && $0.entry.value == category
                    }?.index
                    if categoryIndex == nil {
                        throw ValidationError("\(directory) has no value index for category \(filterCategory[0])")
                    }
                }
            } catch let error as SnapshotError {
                throw ValidationError("\(directory): \(error)")
            }
        case (nil, let items?):
            opened = nil
            let itemArray = try NPYArray(path: items)
            guard itemArray.shape.count == 2 else { throw ValidationError("--items must be 2-D") }
            let (rows, dimension) = (itemArray.shape[0], itemArray.shape[1])
            let itemFloats = try itemArray.floats(name: items)
            let rowStride = VectorCodec.rowStride(dimension: dimension, type: type)
            let vectorBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(rows * rowStride, 1), alignment: 64)
            owned.append(vectorBytes)
            itemFloats.withUnsafeBufferPointer { source in
                for row in 0..<rows {
                    VectorCodec.encode(
                        UnsafeBufferPointer(rebasing: source[(row * dimension)..<((row + 1) * dimension)]), as: type,
                        into: UnsafeMutableRawBufferPointer(
                            rebasing: vectorBytes[(row * rowStride)..<((row + 1) * rowStride)]))
                }
            }
            matrix = try VectorMatrix(
                bytes: UnsafeRawBufferPointer(vectorBytes), count: rows, dimension: dimension,
                type: type)
            filter = try categoryFilter(rows: rows)
            if exact {
                index = nil
            } else {
                let payload = try loadOrBuildGraph(matrix: matrix, metric: metric, space: space)
                let graphBytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(payload.count, 1), alignment: 64)
                owned.append(graphBytes)
                graphBytes.copyBytes(from: payload)
                var walkVectors: VectorMatrix?
                if quantisedWalk {
                    let stride = VectorCodec.rowStride(dimension: dimension, type: .i8)
                    let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(rows * stride, 1), alignment: 64)
                    owned.append(bytes)
                    itemFloats.withUnsafeBufferPointer { source in
                        for row in 0..<rows {
                            let target = UnsafeMutableRawBufferPointer(
                                rebasing: bytes[(row * stride)..<((row + 1) * stride)])
                            VectorCodec.encode(
                                UnsafeBufferPointer(rebasing: source[(row * dimension)..<((row + 1) * dimension)]),
                                as: .i8, into: target)
                        }
                    }
                    walkVectors = try VectorMatrix(
                        bytes: UnsafeRawBufferPointer(bytes), count: rows, dimension: dimension, type: .i8)
                }
                index = try HNSWIndex(
                    vectors: matrix,
                    graph: HNSWGraph(
                        bytes: UnsafeRawBufferPointer(rebasing: graphBytes[0..<payload.count]), rowCount: rows),
                    walkVectors: walkVectors)
            }
        default:
            throw ValidationError("give exactly one of --snapshot and --items")
        }
        let (rows, dimension, rowStride) = (matrix.count, matrix.dimension, matrix.rowStride)
        guard queryArray.shape[1] == dimension else {
            throw ValidationError("--queries has \(queryArray.shape[1]) dimensions, the items \(dimension)")
        }
        let searchMetric = index?.metric ?? opened?.metric ?? metric
        let searchedIndex = categoryIndex
        let partitions = partitionIndex
        let probe = probeRows ?? 0

        let queryCount = queryArray.shape[0]
        var hits = [Int64](repeating: -1, count: queryCount * k)
        let workers = min(threads, max(queryCount, 1))
        let stats = SearchStats(workers: workers)
        let options = (k: k, ef: ef, noEstimate: noEstimate, posting: posting)
        let allocationsBefore = AllocationCounter.current()
        let cpuStarted = processCPUSeconds()
        let started = ContinuousClock.now
        hits.withUnsafeMutableBufferPointer { hitBuffer in
            queryFloats.withUnsafeBufferPointer { queryBuffer in
                let shared = SharedBuffers(hits: hitBuffer, queries: queryBuffer)
                DispatchQueue.concurrentPerform(iterations: workers) { worker in
                    let scratch = SearchScratch(rowCount: rows, dimension: dimension, ef: max(options.ef, options.k))
                    var results: [SearchResult] = []
                    results.reserveCapacity(options.k)
                    for q in stride(from: worker, to: queryCount, by: workers) {
                        let query = UnsafeBufferPointer(
                            rebasing: shared.queries[(q * dimension)..<((q + 1) * dimension)])
                        let path: SearchPath
                        do {
                            if let partitions {
                                path =
                                    filter.isActive
                                    ? try partitions.search(
                                        query: query, k: options.k, probeRows: probe, filter: filter, vectors: matrix,
                                        metric: searchMetric, scratch: scratch, into: &results)
                                    : try partitions.search(
                                        query: query, k: options.k, probeRows: probe, filter: AcceptAllRows(),
                                        vectors: matrix, metric: searchMetric, scratch: scratch, into: &results)
                            } else if let index, let searchedIndex {
                                // As the engine does for a filter that is only the category: every row of the
                                // category's index passes, so no per-row check.
                                path = try searchedIndex.search(
                                    query: query, k: options.k, ef: options.ef, filter: AcceptAllRows(),
                                    estimatedPassCount: nil, vectors: index.vectors, metric: index.metric,
                                    scratch: scratch, into: &results)
                            } else if let index, !filter.isActive {
                                // As the engine does: an unfiltered search passes AcceptAllRows (the specialised loop,
                                // and the walk that follows only the navigation prefix of a hybrid graph).
                                path = try index.search(
                                    query: query, k: options.k, ef: options.ef, scratch: scratch,
                                    into: &results)
                            } else if let index {
                                path = try filter.posting.withUnsafeBufferPointer { rows in
                                    try index.search(
                                        query: query, k: options.k, ef: options.ef, filter: filter,
                                        candidates: options.posting && filter.isActive
                                            ? .rows(rows) : filter.candidates(noEstimate: options.noEstimate),
                                        scratch: scratch, into: &results)
                                }
                            } else if options.posting && filter.isActive {
                                try filter.posting.withUnsafeBufferPointer { rows in
                                    try ExactSearch.search(
                                        vectors: matrix, metric: searchMetric, query: query,
                                        k: options.k, filter: filter, rows: rows, scratch: scratch,
                                        into: &results)
                                }
                                path = .exactRows
                            } else {
                                try ExactSearch.search(
                                    vectors: matrix, metric: searchMetric, query: query, k: options.k,
                                    filter: filter, scratch: scratch, into: &results)
                                path = .exactScan
                            }
                        } catch {
                            fatalError("search failed: \(error)")  // inputs were validated above
                        }
                        stats.record(worker: worker, path: path, scored: scratch.lastScoredCount)
                        for (slot, hit) in results.enumerated() { shared.hits[q * options.k + slot] = Int64(hit.row) }
                    }
                }
            }
        }
        let elapsed = started.duration(to: .now)
        let cpuSeconds = processCPUSeconds() - cpuStarted
        let allocations = AllocationCounter.current().map { after in after - (allocationsBefore ?? after) }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        try NPYArray.writeInt64(hits, shape: [queryCount, k], to: out)
        let scannedBytes = Double(stats.totalScored) * Double(rowStride)
        var line = String(
            format: "queries=%d k=%d ef=%d threads=%d seconds=%.4f qps=%.1f scored_per_query=%.1f scan_gbps=%.3f",
            queryCount, k, ef, workers, seconds, Double(queryCount) / seconds,
            Double(stats.totalScored) / Double(max(queryCount, 1)), scannedBytes / seconds / 1e9)
        // CPU time of the search loop: on a shared machine, queries per CPU-second moves far less with load than
        // queries per wall-second (with --threads 1 only the searching thread is busy).
        line += String(format: " cpu_seconds=%.4f cpu_qps=%.1f", cpuSeconds, Double(queryCount) / max(cpuSeconds, 1e-9))
        line += " paths=" + stats.pathSummary + " kernels=" + DistanceKernels.inUse
        if let index { line += " walk=" + (index.walkVectors != nil ? "int8" : "exact") }
        if let allocations { line += " allocations=\(allocations)" }
        print(line)
    }

    private func loadOrBuildGraph(matrix: VectorMatrix, metric: Metric, space: InnerProductGraphSpace) throws -> [UInt8]
    {
        if let graph, FileManager.default.fileExists(atPath: graph) {
            return [UInt8](try Data(contentsOf: URL(fileURLWithPath: graph)))
        }
        let started = ContinuousClock.now
        let payload = HNSWIndexBuilder.build(
            vectors: matrix, metric: metric, parameters: HNSWParameters(m: m, efConstruction: efConstruction),
            threads: buildThreads, innerProductSpace: space, progress: nil)
        let elapsed = started.duration(to: .now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print(
            String(
                format: "build rows=%d m=%d ef_construction=%d threads=%d space=%@ seconds=%.2f bytes=%d",
                matrix.count, m, efConstruction, buildThreads, space.rawValue, seconds, payload.count))
        if let graph { try Data(payload).write(to: URL(fileURLWithPath: graph)) }
        return payload
    }

    private func categoryFilter(rows: Int) throws -> CategoryFilter {
        guard !filterCategory.isEmpty else {
            return CategoryFilter(category: nil, allowed: [], posting: [], passCount: rows)
        }
        guard let categories else { throw ValidationError("--filter-category needs --categories") }
        let wanted = try filterCategory.map { text -> Int in
            guard let value = Int(text), value >= 0 else {
                throw ValidationError("--filter-category \(text): not a category number")
            }
            return value
        }
        let column = try NPYArray(path: categories).integers(name: categories)
        guard column.count == rows else { throw ValidationError("--categories must have one entry per item") }
        return CategoryFilter(category: column.map { Int32(truncatingIfNeeded: $0) }, wanted: wanted)
    }

    private func snapshotCategoryFilter(_ snapshot: Snapshot) throws -> CategoryFilter {
        let rows = snapshot.itemVectors.count
        guard !filterCategory.isEmpty else {
            return CategoryFilter(category: nil, allowed: [], posting: [], passCount: rows)
        }
        let wanted = try filterCategory.map { name -> Int in
            guard let row = snapshot.categories.row(for: name) else {
                throw ValidationError("--filter-category \(name): no such category in the snapshot")
            }
            return row
        }
        let column = snapshot.attributes.category
        let category = (0..<rows).map {
            column[$0] == ItemAttributes.none ? Int32(-1) : Int32(truncatingIfNeeded: column[$0])
        }
        return CategoryFilter(category: category, wanted: wanted)
    }
}

/// Accepts rows whose category is allowed; knows its pass count and posting list (the sorted passing rows), as the
/// engine will from the snapshot's per-category counts and posting lists.
/// A class so the search's type-erased filter holds one reference inline: a filter value larger than three words
/// would be boxed — one heap allocation per search.
final class CategoryFilter: RowFilter, @unchecked Sendable {
    let category: [Int32]?
    let allowed: [Bool]
    let posting: [Int32]
    let passCount: Int

    init(category: [Int32]?, allowed: [Bool], posting: [Int32], passCount: Int) {
        self.category = category
        self.allowed = allowed
        self.posting = posting
        self.passCount = passCount
    }

    /// A filter passing rows whose category is one of `wanted`.
    convenience init(category: [Int32], wanted: [Int]) {
        var allowed = [Bool](repeating: false, count: max(Int(category.max() ?? 0), wanted.max() ?? 0) + 1)
        for c in wanted { allowed[c] = true }
        let posting = category.indices.filter { category[$0] >= 0 && allowed[Int(category[$0])] }.map(Int32.init)
        self.init(category: category, allowed: allowed, posting: posting, passCount: posting.count)
    }

    /// Whether any row can fail (a category restriction was given).
    var isActive: Bool { category != nil }

    func accepts(_ row: Int32) -> Bool {
        guard let category else { return true }
        let c = Int(category[Int(row)])
        return c >= 0 && c < allowed.count && allowed[c]
    }

    func candidates(noEstimate: Bool) -> CandidateRows {
        guard category != nil, !noEstimate else { return .all(estimatedPassCount: nil) }
        return .all(estimatedPassCount: passCount)
    }
}

/// Raw buffers shared by the search threads; each thread writes only its own queries' hit rows.
struct SharedBuffers: @unchecked Sendable {
    let hits: UnsafeMutableBufferPointer<Int64>
    let queries: UnsafeBufferPointer<Float>
}

/// Per-worker counters of search paths and scored rows (fixed arrays: recording never allocates).
final class SearchStats: @unchecked Sendable {
    private static let paths = SearchPath.allCases
    private static let slots = 8  // counters of different workers 64 bytes apart: no false sharing
    private var counters: [Int]

    init(workers: Int) {
        precondition(1 + Self.paths.count <= Self.slots, "a worker's counters outgrew its slots")
        counters = [Int](repeating: 0, count: workers * Self.slots)
    }

    func record(worker: Int, path: SearchPath, scored count: Int) {
        let base = worker * Self.slots
        counters[base] += count
        counters[base + 1 + Self.paths.firstIndex(of: path)!] += 1
    }

    var totalScored: Int { stride(from: 0, to: counters.count, by: Self.slots).reduce(0) { $0 + counters[$1] } }

    var pathSummary: String {
        Self.paths.indices.compactMap { i in
            let n = stride(from: 1 + i, to: counters.count, by: Self.slots).reduce(0) { $0 + counters[$1] }
            return n > 0 ? "\(Self.paths[i].rawValue):\(n)" : nil
        }.joined(separator: ",")
    }
}

/// CPU time consumed by this process so far (all threads), in seconds.
private func processCPUSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}

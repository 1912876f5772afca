import Dispatch
import SeededRandom

/// Builds HNSW graphs (Malkov & Yashunin 2018) and serializes them in the `HNSWGraphLayout` format.
///
/// Determinism: node levels come from a hash of (seed, row), not from insertion order or thread timing. Rows are
/// inserted in row order in batches; within a batch every row searches the graph as it was when the batch started
/// (read-only, in parallel), then links are applied: each new row's own lists, then reverse links grouped by target
/// row in a sorted order, each target's group processed by exactly one thread. No step depends on thread timing,
/// so the payload is byte-identical for the same input and parameters, for *any* thread count.
/// Batches grow with the graph (1/32 of the rows inserted so far, at most 1024), so early rows are inserted one at a
/// time and a batch never hides more than ~3% of the graph from its own members.
public enum HNSWIndexBuilder {
    /// Builds the graph over `vectors` and returns the serialized graph payload.
    ///
    /// - Parameters:
    ///   - metric: the search metric; `ip` graphs use the hybrid space (see InnerProductGraphSpace).
    ///   - threads: worker threads (≥ 1); the result does not depend on it.
    ///   - progress: called after each batch with the number of rows inserted so far.
    /// - Complexity: O(n · efConstruction · M · log n) kernel evaluations.
    public static func build(
        vectors: VectorMatrix, metric: Metric, parameters: HNSWParameters, threads: Int,
        progress: (@Sendable (Int) -> Void)?
    ) -> [UInt8] {
        build(
            vectors: vectors, metric: metric, parameters: parameters, threads: threads,
            innerProductSpace: .hybrid, progress: progress)
    }

    /// As `build(vectors:metric:parameters:threads:progress:)`, choosing the space of an `ip` graph (ignored for
    /// other metrics). `.plain` exists to measure what the MIPS transform buys.
    public static func build(
        vectors: VectorMatrix, metric: Metric, parameters: HNSWParameters, threads: Int,
        innerProductSpace: InnerProductGraphSpace, progress: (@Sendable (Int) -> Void)?
    ) -> [UInt8] {
        precondition((2...256).contains(parameters.m), "HNSW m must be in 2...256")
        let transform = metric == .ip && innerProductSpace == .extraDimension
        let work = BuildVectors(vectors, metric: metric, extraDimension: transform)
        defer { work.deallocate() }
        if metric == .l2 {
            return GraphBuilder<NegativeSquaredL2Kernel<F32Elements>>(
                work: work, metric: metric, parameters: parameters, flags: 0, threads: threads
            ).run(progress: progress)
        }
        let flags: UInt32
        switch (metric, innerProductSpace) {
        case (.ip, .extraDimension): flags = HNSWGraphLayout.flagExtraDimensionMIPS
        case (.ip, .hybrid): flags = HNSWGraphLayout.flagAngularLevel0 | HNSWGraphLayout.flagNavigationPrefix
        default: flags = 0
        }
        let builder = GraphBuilder<InnerProductKernel<F32Elements>>(
            work: work, metric: metric, parameters: parameters, flags: flags, threads: threads)
        guard flags & HNSWGraphLayout.flagAngularLevel0 != 0 else { return builder.run(progress: progress) }
        // The angular graph only contributes level-0 links, so a smaller beam suffices.
        let angularWork = BuildVectors(vectors, metric: .cosine, extraDimension: false)
        defer { angularWork.deallocate() }
        var angularParameters = parameters
        angularParameters.efConstruction = max(parameters.m, parameters.efConstruction / 2)
        let angular = GraphBuilder<InnerProductKernel<F32Elements>>(
            work: angularWork, metric: .cosine, parameters: angularParameters, flags: 0, threads: threads
        ).run(progress: nil)
        var payload = builder.run(progress: progress)
        builder.mergeAngularLevel0(into: &payload, angular: angular, angularWork: angularWork)
        return payload
    }

    /// The level of `row`: P(level ≥ l) = m^-l, from a SplitMix64 stream seeded by (seed, row).
    static func level(row: Int, seed: UInt64, m: Int) -> Int {
        var random = SplitMix64(seed: seed ^ (UInt64(row) &* 0xD1B5_4A32_D192_ED03))
        var level = 0
        while level < HNSWGraphLayout.maximumLevel && random.next() % UInt64(m) == 0 { level += 1 }
        return level
    }
}

/// The rows as decoded Float32, zero-padded to a multiple of 16, in the space the graph is built in: cosine rows
/// normalised, ip rows optionally extended with the MIPS coordinate.
struct BuildVectors: @unchecked Sendable {
    let storage: UnsafeMutablePointer<Float>
    let count: Int
    let stride: Int  // floats per row

    init(_ vectors: VectorMatrix, metric: Metric, extraDimension: Bool) {
        let dimension = vectors.dimension
        count = vectors.count
        stride = (dimension + (extraDimension ? 1 : 0) + 15) & ~15
        storage = .allocate(capacity: max(count * stride, 1))
        storage.initialize(repeating: 0, count: max(count * stride, 1))
        var maxNormSquared: Float = 0
        for row in 0..<count {
            let destination = UnsafeMutableBufferPointer(start: storage + row * stride, count: dimension)
            vectors.decodeRow(row, into: destination)
            var normSquared: Float = 0
            for x in destination { normSquared += x * x }
            maxNormSquared = max(maxNormSquared, normSquared)
            if metric == .cosine && normSquared > 0 {
                let inverse = 1 / normSquared.squareRoot()
                for i in 0..<dimension { destination[i] *= inverse }
            }
        }
        if extraDimension {
            for row in 0..<count {
                let r = storage + row * stride
                var normSquared: Float = 0
                for i in 0..<dimension { normSquared += r[i] * r[i] }
                r[dimension] = max(0, maxNormSquared - normSquared).squareRoot()
            }
        }
    }

    func deallocate() { storage.deallocate() }

    @inline(__always) func row(_ row: Int32) -> UnsafePointer<Float> { UnsafePointer(storage + Int(row) * stride) }
}

/// A reverse link to add: `source` (new) into the list of `target` (older) at `level`.
struct ReverseEdge: Comparable {
    var level: Int32
    var target: Int32
    var source: Int32

    static func < (a: ReverseEdge, b: ReverseEdge) -> Bool {
        (a.level, a.target, a.source) < (b.level, b.target, b.source)
    }
}

/// Shares raw pointers with the worker threads of one build; every phase writes disjoint memory (see
/// `HNSWIndexBuilder`).
struct Shared<Value>: @unchecked Sendable {
    let value: Value
}

/// Per-thread build state: a search scratch and reusable candidate arrays.
final class BuildWorker {
    let scratch: SearchScratch
    var candidates: [ScoredRow] = []
    var selected: [ScoredRow] = []

    init(rowCount: Int, efConstruction: Int) {
        scratch = SearchScratch(rowCount: rowCount, dimension: 0, ef: efConstruction)
    }
}

struct GraphBuilder<Kernel: RowKernel> {
    let work: BuildVectors
    let metric: Metric
    let parameters: HNSWParameters
    let flags: UInt32
    let threads: Int
    let m: Int
    let efConstruction: Int
    let levels: [Int]

    init(work: BuildVectors, metric: Metric, parameters: HNSWParameters, flags: UInt32, threads: Int) {
        self.work = work
        self.metric = metric
        self.parameters = parameters
        self.flags = flags
        self.threads = max(1, threads)
        m = parameters.m
        efConstruction = max(parameters.efConstruction, parameters.m)
        levels = (0..<work.count).map { HNSWIndexBuilder.level(row: $0, seed: parameters.seed, m: parameters.m) }
    }

    func scorer(for row: Int32) -> KernelScorer<Kernel> {
        KernelScorer(
            query: work.row(row), base: UnsafeRawPointer(work.storage), stride: work.stride * 4,
            dimension: work.stride)
    }

    func run(progress: (@Sendable (Int) -> Void)?) -> [UInt8] {
        let n = work.count
        var upperIndex = [UInt32](repeating: 0, count: n)
        var upperWords = 0
        for row in 0..<n where levels[row] > 0 {
            upperIndex[row] = UInt32(upperWords)
            upperWords += levels[row] * (1 + m)
        }
        precondition(upperWords < Int(UInt32.max), "graph too large for 32-bit upper-level offsets")
        let sizing = HNSWGraphLayout(
            base: UnsafeRawPointer(bitPattern: 64)!, rowCount: n, m: m, upperWordCount: upperWords)
        var payload = [UInt8](repeating: 0, count: sizing.totalSize)
        payload.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            let layout = HNSWGraphLayout(base: UnsafeRawPointer(base), rowCount: n, m: m, upperWordCount: upperWords)
            for row in 0..<n {
                base.storeBytes(of: UInt8(levels[row]), toByteOffset: layout.levelsOffset + row, as: UInt8.self)
                base.storeHeaderField(upperIndex[row], at: layout.upperIndexOffset + 4 * row)
            }
            let (entry, maxLevel) = insertAll(layout, progress: progress)
            for (i, byte) in HNSWGraphLayout.magic.enumerated() {
                base.storeBytes(of: byte, toByteOffset: i, as: UInt8.self)
            }
            base.storeHeaderField(HNSWGraphLayout.version, at: HNSWGraphLayout.Field.version)
            base.storeHeaderField(UInt32(HNSWGraphLayout.headerSize), at: HNSWGraphLayout.Field.headerSize)
            base.storeHeaderField(metric.graphCode, at: HNSWGraphLayout.Field.metric)
            base.storeHeaderField(flags, at: HNSWGraphLayout.Field.flags)
            base.storeHeaderField(UInt64(n), at: HNSWGraphLayout.Field.rowCount)
            base.storeHeaderField(UInt32(m), at: HNSWGraphLayout.Field.m)
            base.storeHeaderField(UInt32(2 * m), at: HNSWGraphLayout.Field.maxDegree0)
            base.storeHeaderField(UInt32(maxLevel), at: HNSWGraphLayout.Field.maxLevel)
            base.storeHeaderField(entry, at: HNSWGraphLayout.Field.entryPoint)
            base.storeHeaderField(UInt32(clamping: parameters.efConstruction), at: HNSWGraphLayout.Field.efConstruction)
            base.storeHeaderField(parameters.seed, at: HNSWGraphLayout.Field.seed)
            base.storeHeaderField(UInt64(layout.level0Offset), at: HNSWGraphLayout.Field.level0Offset)
            base.storeHeaderField(UInt64(layout.levelsOffset), at: HNSWGraphLayout.Field.levelsOffset)
            base.storeHeaderField(UInt64(layout.upperIndexOffset), at: HNSWGraphLayout.Field.upperIndexOffset)
            base.storeHeaderField(UInt64(layout.upperDataOffset), at: HNSWGraphLayout.Field.upperDataOffset)
            base.storeHeaderField(UInt64(upperWords), at: HNSWGraphLayout.Field.upperWordCount)
            base.storeHeaderField(UInt64(layout.totalSize), at: HNSWGraphLayout.Field.totalSize)
        }
        return payload
    }

    /// Inserts every row; returns the entry point and max level.
    private func insertAll(_ layout: HNSWGraphLayout, progress: (@Sendable (Int) -> Void)?) -> (Int32, Int) {
        let n = work.count
        guard n > 0 else { return (-1, 0) }
        var entry: Int32 = 0
        var maxLevel = levels[0]
        let workers = (0..<threads).map { _ in BuildWorker(rowCount: n, efConstruction: efConstruction) }
        let maxBatch = 1024
        // Pending own lists of one batch: per row, per level 0...maximumLevel, [degree, m neighbours].
        let listWords = 1 + m
        let rowWords = (HNSWGraphLayout.maximumLevel + 1) * listWords
        let pending = UnsafeMutablePointer<Int32>.allocate(capacity: maxBatch * rowWords)
        defer { pending.deallocate() }
        var edges: [ReverseEdge] = []
        var groupStarts: [Int] = []
        var inserted = 1
        progress?(inserted)
        while inserted < n {
            let start = inserted
            let batch = min(n - start, max(1, min(start / 32, maxBatch)))
            let frozenEntry = entry, frozenMaxLevel = maxLevel
            parallel(count: batch) { worker, i in
                let row = Int32(start + i)
                findNeighbors(
                    layout, row: row, entry: frozenEntry, maxLevel: frozenMaxLevel, worker: workers[worker],
                    output: pending + i * rowWords)
            }
            edges.removeAll(keepingCapacity: true)
            for i in 0..<batch {
                let row = Int32(start + i)
                for level in 0...min(levels[Int(row)], frozenMaxLevel) {
                    let source = pending + i * rowWords + level * listWords
                    let list = UnsafeMutablePointer(mutating: layout.list(row, level: level))
                    list.update(from: source, count: 1 + Int(source[0]))
                    for slot in 0..<Int(source[0]) {
                        edges.append(ReverseEdge(level: Int32(level), target: source[1 + slot], source: row))
                    }
                }
            }
            edges.sort()
            groupStarts.removeAll(keepingCapacity: true)
            for (index, edge) in edges.enumerated()
            where index == 0 || edge.target != edges[index - 1].target || edge.level != edges[index - 1].level {
                groupStarts.append(index)
            }
            groupStarts.append(edges.count)
            let groupCount = groupStarts.count - 1
            edges.withUnsafeBufferPointer { edgeBuffer in
                let edgesShared = Shared(value: edgeBuffer)
                parallel(count: groupCount) { worker, group in
                    let slice = UnsafeBufferPointer(
                        rebasing: edgesShared.value[groupStarts[group]..<groupStarts[group + 1]])
                    addReverseLinks(layout, edges: slice, worker: workers[worker])
                }
            }
            for i in 0..<batch where levels[start + i] > maxLevel {
                maxLevel = levels[start + i]
                entry = Int32(start + i)
            }
            inserted += batch
            progress?(inserted)
        }
        return (entry, maxLevel)
    }

    /// Runs `body(worker, item)` for `item` in 0..<count on `threads` threads; worker `t` takes items t, t+threads…
    private func parallel(count: Int, _ body: (Int, Int) -> Void) {
        let workers = min(threads, count)
        if workers <= 1 {
            for item in 0..<count { body(0, item) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let shared = Shared(value: body)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for item in stride(from: worker, to: count, by: workers) { shared.value(worker, item) }
            }
        }
    }

    /// Searches the (frozen) graph for `row`'s neighbours at each of its levels that exist in the graph, selects up
    /// to `m` per level with the heuristic, and writes [degree, neighbours] per level to `output`.
    private func findNeighbors(
        _ layout: HNSWGraphLayout, row: Int32, entry: Int32, maxLevel: Int, worker: BuildWorker,
        output: UnsafeMutablePointer<Int32>
    ) {
        let scorer = scorer(for: row)
        let top = levels[Int(row)]
        var scored = 0
        var current = ScoredRow(score: scorer.score(entry), row: entry)
        current = greedyDescend(layout, scorer: scorer, entry: current, from: maxLevel, downTo: top, scored: &scored)
        var level = min(top, maxLevel)
        while level >= 0 {
            searchLayer(
                layout, level: level, scorer: scorer, filter: AcceptAllRows(), entry: current,
                ef: efConstruction, scratch: worker.scratch, scored: &scored)
            worker.candidates.removeAll(keepingCapacity: true)
            while !worker.scratch.results.isEmpty { worker.candidates.append(worker.scratch.results.pop()) }
            worker.candidates.reverse()
            current = worker.candidates[0]
            selectNeighbors(worker, maximum: m)
            let list = output + level * (1 + m)
            list[0] = Int32(worker.selected.count)
            for (slot, neighbor) in worker.selected.enumerated() { list[1 + slot] = neighbor.row }
            level -= 1
        }
    }

    /// Malkov & Yashunin's neighbour-selection heuristic (algorithm 4) over `worker.candidates` (best first):
    /// keep a candidate only if it is closer to the base row than to every already kept one. Result in
    /// `worker.selected`.
    private func selectNeighbors(_ worker: BuildWorker, maximum: Int) {
        worker.selected.removeAll(keepingCapacity: true)
        for candidate in worker.candidates {
            if worker.selected.count >= maximum { break }
            let candidateScorer = scorer(for: candidate.row)
            var keep = true
            for kept in worker.selected where candidateScorer.score(kept.row) > candidate.score {
                keep = false
                break
            }
            if keep { worker.selected.append(candidate) }
        }
    }

    /// Adds every `source` of `edges` (all one target and level) to the target's list; when the list would
    /// overflow, re-selects among old and new neighbours with the heuristic.
    private func addReverseLinks(
        _ layout: HNSWGraphLayout, edges: UnsafeBufferPointer<ReverseEdge>, worker: BuildWorker
    ) {
        let target = edges[0].target, level = Int(edges[0].level)
        let list = UnsafeMutablePointer(mutating: layout.list(target, level: level))
        let maximum = level == 0 ? 2 * m : m
        var degree = Int(list[0])
        var overflow = false
        for edge in edges {
            if (0..<degree).contains(where: { list[1 + $0] == edge.source }) { continue }
            if degree < maximum {
                degree += 1
                list[degree] = edge.source
            } else {
                overflow = true
                break
            }
        }
        list[0] = Int32(degree)
        guard overflow else { return }
        let scorer = scorer(for: target)
        worker.candidates.removeAll(keepingCapacity: true)
        for slot in 1...degree { worker.candidates.append(ScoredRow(score: scorer.score(list[slot]), row: list[slot])) }
        for edge in edges where !worker.candidates.contains(where: { $0.row == edge.source }) {
            worker.candidates.append(ScoredRow(score: scorer.score(edge.source), row: edge.source))
        }
        worker.candidates.sort(by: BestOnTop.above)
        selectNeighbors(worker, maximum: maximum)
        list[0] = Int32(worker.selected.count)
        for (slot, neighbor) in worker.selected.enumerated() { list[1 + slot] = neighbor.row }
        // Unused slots are zero, so the payload depends only on the lists.
        for slot in worker.selected.count..<maximum { list[1 + slot] = 0 }
    }

    /// Rebuilds every level-0 list as: all of its inner-product neighbours (the navigation prefix, in their
    /// heuristic order), then its best angular neighbours (from `angular`, a cosine graph over the same rows) up to
    /// `2m`, without duplicates; the degree word packs both counts (`HNSWGraphLayout.flagNavigationPrefix`).
    ///
    /// Why: an inner-product graph gives low-norm rows no in-links (they are nobody's best inner product; at 100k
    /// rows × 64, 79% of rows had none and the heuristic left 2.3 of 32 slots used on average), so a filtered walk
    /// whose passing rows are low-norm cannot reach them. The angular links fill the otherwise empty slots and keep
    /// every row reachable for filtered walks; unfiltered walks skip them and navigate like a plain ip graph.
    func mergeAngularLevel0(into payload: inout [UInt8], angular: [UInt8], angularWork: BuildVectors) {
        let n = work.count
        // Any bound ≥ the real one will do: only level 0 is read.
        let upperWords = (payload.count - HNSWGraphLayout.headerSize) / 4
        angular.withUnsafeBytes { angularRaw in
            payload.withUnsafeMutableBytes { raw in
                let mine = HNSWGraphLayout(
                    base: UnsafeRawPointer(raw.baseAddress!), rowCount: n, m: m, upperWordCount: upperWords)
                let theirs = HNSWGraphLayout(
                    base: angularRaw.baseAddress!, rowCount: n, m: m, upperWordCount: upperWords)
                var ranked: [ScoredRow] = []
                var merged: [Int32] = []
                for row in 0..<Int32(n) {
                    let own = UnsafeMutablePointer(mutating: mine.level0List(row))
                    merged.removeAll(keepingCapacity: true)
                    for slot in 0..<Int(own[0]) { merged.append(own[1 + slot]) }
                    let prefix = merged.count
                    let other = theirs.level0List(row)
                    let angularScorer = KernelScorer<InnerProductKernel<F32Elements>>(
                        query: angularWork.row(row), base: UnsafeRawPointer(angularWork.storage),
                        stride: angularWork.stride * 4, dimension: angularWork.stride)
                    ranked.removeAll(keepingCapacity: true)
                    for slot in 0..<Int(other[0]) {
                        ranked.append(ScoredRow(score: angularScorer.score(other[1 + slot]), row: other[1 + slot]))
                    }
                    ranked.sort(by: BestOnTop.above)
                    for hit in ranked where merged.count < 2 * m && !merged.contains(hit.row) { merged.append(hit.row) }
                    own[0] = Int32(prefix << 16 | merged.count)
                    for slot in 0..<(2 * m) { own[1 + slot] = slot < merged.count ? merged[slot] : 0 }
                }
            }
        }
    }
}

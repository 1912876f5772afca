import Foundation
import MappedStorage
import VectorIndex

/// The retrieval structures a build derives from the stored item vectors: the HNSW graph, the filter index (brand
/// posting lists and per-value indexes) and the partitions, each read back through the mapping so it sees exactly
/// the stored rows.
extension BuildJob {
    /// Builds the HNSW graph over the item vectors just written (read back through the mapping, so the
    /// graph sees exactly the stored, possibly quantised, rows).
    func writeGraph(items: Int) throws(SnapshotError) {
        let file = try mappingErrors { try MappedFile(path: path(SnapshotFiles.itemVectors)) }
        let vectors = try VectorTable(SectionFile(file: file, name: SnapshotFiles.itemVectors, kind: .vectors))
        let progress = self.progress
        let payload = HNSWIndexBuilder.build(
            vectors: vectors.matrix, metric: options.metric, parameters: options.hnsw, threads: options.threads,
            progress: { done in progress?(SnapshotBuildProgress(stage: "item graph", done: done, total: items)) })
        try mappingErrors {
            let out = try SectionFileWriter(
                path: path(SnapshotFiles.graph), kind: .graph,
                parameters: [UInt64(items)], sectionLengths: [payload.count])
            try out.beginSection()
            try out.writer.write(payload)
            try out.finish()
        }
    }

    /// Writes the filter index: every brand's posting list, and a value index for each category and brand with at
    /// least `quantisedMinItems` or `subgraphMinItems` items (0: none by that rule): its rows and quantised block,
    /// and from `subgraphMinItems` items a graph built like the global one over the stored rows.
    func writeFilterIndex(quantisedMinItems: Int, subgraphMinItems: Int) throws(SnapshotError) {
        let attributesFile = try mappingErrors { try MappedFile(path: path(SnapshotFiles.itemAttributes)) }
        let section = try SectionFile(file: attributesFile, name: SnapshotFiles.itemAttributes, kind: .attributes)
        let categoryCount = try section.parameter(1, "category count")
        let brandCount = try section.parameter(2, "brand count")
        let attributes = try ItemAttributes(
            section, categories: categoryCount, brands: brandCount, tags: try section.parameter(3, "tag count"))
        let rows = attributes.count
        func postings(_ column: Column<UInt32>, _ values: Int) -> (starts: [UInt64], rows: [UInt32]) {
            Self.postings(count: rows, values: values) { column[$0] }
        }
        let brands = postings(attributes.brand, brandCount)
        var directory: [UInt64] = []
        var valueRows: [Int32] = []
        var graphs: [UInt8] = []
        var blocks: [UInt8] = []
        let vectorFile = try mappingErrors { try MappedFile(path: path(SnapshotFiles.itemVectors)) }
        let vectors = try VectorTable(SectionFile(file: vectorFile, name: SnapshotFiles.itemVectors, kind: .vectors))
        func qualifies(_ count: Int, _ minimum: Int) -> Bool { minimum > 0 && count >= minimum }
        let categories = postings(attributes.category, categoryCount)
        for (attribute, lists, count) in [
            (FilterIndex.Attribute.category, categories, categoryCount), (.brand, brands, brandCount),
        ] {
            for value in 0..<count {
                let members = lists.rows[Int(lists.starts[value])..<Int(lists.starts[value + 1])]
                let withGraph = qualifies(members.count, subgraphMinItems)
                guard withGraph || qualifies(members.count, quantisedMinItems) else { continue }
                let payload =
                    withGraph
                    ? try buildSubgraph(rows: members, vectors: vectors.matrix, stage: "\(attribute) \(value) graph")
                    : []
                graphs.append(contentsOf: repeatElement(0, count: (64 - graphs.count % 64) % 64))
                directory += [
                    UInt64(attribute.rawValue) | UInt64(value) << 32, UInt64(valueRows.count),
                    UInt64(members.count), UInt64(graphs.count), UInt64(payload.count),
                ]
                valueRows.append(contentsOf: members.map { Int32($0) })
                graphs.append(contentsOf: payload)
                appendQuantisedBlock(rows: members, vectors: vectors.matrix, to: &blocks)
            }
        }
        try mappingErrors {
            let out = try SectionFileWriter(
                path: path(SnapshotFiles.filterIndex), kind: .filterIndex,
                parameters: [UInt64(rows), UInt64(brandCount), UInt64(directory.count / 5)],
                sectionLengths: [
                    8 * brands.starts.count, 4 * brands.rows.count, 8 * directory.count, 4 * valueRows.count,
                    graphs.count, blocks.count,
                ])
            try out.beginSection(); try out.writer.write(contentsOf: brands.starts)
            try out.beginSection(); try out.writer.write(contentsOf: brands.rows)
            try out.beginSection(); try out.writer.write(contentsOf: directory)
            try out.beginSection(); try out.writer.write(contentsOf: valueRows)
            try out.beginSection(); try out.writer.write(graphs)
            try out.beginSection(); try out.writer.write(blocks)
            try out.finish()
        }
    }

    /// Writes `partitions.ivf` when the catalogue has at least `partitionMinItems` items and partitions are not
    /// off: k-means over the item vectors (``PartitionBuilder``, seeded by the HNSW seed), the items grouped by
    /// partition in row order, and their quantised copy in that order. Returns the partition count, or nil.
    func writePartitions(items: Int) throws(SnapshotError) -> Int? {
        let requested = options.partitions ?? PartitionBuilder.defaultPartitions(rows: items)
        guard requested > 0, items >= max(options.partitionMinItems, 1) else { return nil }
        let vectorFile = try mappingErrors { try MappedFile(path: path(SnapshotFiles.itemVectors)) }
        let vectors = try VectorTable(SectionFile(file: vectorFile, name: SnapshotFiles.itemVectors, kind: .vectors))
        let progress = self.progress
        let built = PartitionBuilder.build(
            vectors: vectors.matrix, partitions: requested, seed: options.hnsw.seed, threads: options.threads,
            progress: { done, total in progress?(SnapshotBuildProgress(stage: "partitions", done: done, total: total)) }
        )
        let partitions = built.partitions
        // Counting sort by partition, stable: rows stay ascending within each partition.
        var starts = [Int32](repeating: 0, count: partitions + 1)
        for partition in built.assignment { starts[Int(partition) + 1] += 1 }
        for p in 0..<partitions { starts[p + 1] += starts[p] }
        var next = starts
        var rows = [UInt32](repeating: 0, count: items)
        for (row, partition) in built.assignment.enumerated() {
            rows[Int(next[Int(partition)])] = UInt32(row)
            next[Int(partition)] += 1
        }
        var blocks: [UInt8] = []
        blocks.reserveCapacity(items * VectorCodec.rowStride(dimension: vectors.dimension, type: .i8))
        appendQuantisedBlock(rows: rows[...], vectors: vectors.matrix, to: &blocks)
        try mappingErrors {
            let out = try SectionFileWriter(
                path: path(SnapshotFiles.partitions), kind: .partitions,
                parameters: [UInt64(items), UInt64(partitions), UInt64(vectors.dimension)],
                sectionLengths: [4 * built.centroids.count, 4 * starts.count, 4 * rows.count, blocks.count])
            try out.beginSection(); try out.writer.write(contentsOf: built.centroids)
            try out.beginSection(); try out.writer.write(contentsOf: starts)
            try out.beginSection(); try out.writer.write(contentsOf: rows)
            try out.beginSection(); try out.writer.write(blocks)
            try out.finish()
        }
        return partitions
    }

    /// Appends `rows` of `vectors`, decoded and re-encoded as `i8` (`VectorCodec`), in order: the quantised block a
    /// value's searches scan (docs/INDEX.md "Attribute subgraphs").
    /// Writes `item_walk.i8`: every stored item row re-encoded as `i8`, in row order, for the graph walk to score
    /// (docs/INDEX.md "Quantised walk").
    func writeWalkVectors(items: Int) throws(SnapshotError) {
        let vectorFile = try mappingErrors { try MappedFile(path: path(SnapshotFiles.itemVectors)) }
        let vectors = try VectorTable(SectionFile(file: vectorFile, name: SnapshotFiles.itemVectors, kind: .vectors))
        var blocks: [UInt8] = []
        blocks.reserveCapacity(items * VectorCodec.rowStride(dimension: vectors.dimension, type: .i8))
        appendQuantisedBlock(rows: (0..<UInt32(items)).map { $0 }[...], vectors: vectors.matrix, to: &blocks)
        try mappingErrors {
            let out = try SectionFileWriter(
                path: path(SnapshotFiles.walkVectors), kind: .walkVectors,
                parameters: [UInt64(items), UInt64(vectors.dimension)], sectionLengths: [blocks.count])
            try out.beginSection()
            try out.writer.write(blocks)
            try out.finish()
        }
    }

    func appendQuantisedBlock(rows: ArraySlice<UInt32>, vectors: VectorMatrix, to blocks: inout [UInt8]) {
        let stride = VectorCodec.rowStride(dimension: vectors.dimension, type: .i8)
        let start = blocks.count
        blocks.append(contentsOf: repeatElement(0, count: rows.count * stride))
        var decoded = [Float](repeating: 0, count: vectors.dimension)
        blocks.withUnsafeMutableBytes { destination in
            for (index, row) in rows.enumerated() {
                decoded.withUnsafeMutableBufferPointer { vectors.decodeRow(Int(row), into: $0) }
                let offset = start + index * stride
                decoded.withUnsafeBufferPointer { source in
                    VectorCodec.encode(
                        source, as: .i8,
                        into: UnsafeMutableRawBufferPointer(rebasing: destination[offset..<(offset + stride)]))
                }
            }
        }
    }

    /// The HNSW payload over the stored rows `rows` of `vectors` (gathered into one contiguous matrix).
    func buildSubgraph(
        rows: ArraySlice<UInt32>, vectors: VectorMatrix, stage: String
    ) throws(SnapshotError) -> [UInt8] {
        let stride = vectors.rowStride
        var gathered = [UInt8](repeating: 0, count: rows.count * stride)
        gathered.withUnsafeMutableBytes { destination in
            for (index, row) in rows.enumerated() {
                let source = vectors.rowBytes(Int(row))
                UnsafeMutableRawBufferPointer(rebasing: destination[(index * stride)..<((index + 1) * stride)])
                    .copyMemory(from: source)
            }
        }
        let progress = self.progress
        let total = rows.count
        let metric = options.metric, parameters = options.hnsw, threads = options.threads
        let built = gathered.withUnsafeBytes { (bytes) -> Result<[UInt8], SnapshotError> in
            do {
                let subset = try VectorMatrix(
                    bytes: bytes, count: total, dimension: vectors.dimension, type: vectors.elementType)
                return .success(
                    HNSWIndexBuilder.build(
                        vectors: subset, metric: metric, parameters: parameters, threads: threads,
                        progress: { done in progress?(SnapshotBuildProgress(stage: stage, done: done, total: total)) }))
            } catch {
                return .failure(.invalidArgument(name: stage, reason: "\(error)"))
            }
        }
        return try built.get()
    }
}

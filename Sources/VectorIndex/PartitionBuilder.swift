import Dispatch
import SeededRandom

/// Groups a matrix's rows into partitions for a ``PartitionIndex``: k-means (Lloyd's algorithm, squared Euclidean
/// distance) trained on a seeded sample of the rows, then every row assigned to its nearest centroid.
///
/// Deterministic: the same rows, count, seed and iterations give the same centroids and assignment whatever the
/// thread count (work is split into a fixed number of chunks whose partial sums are added in chunk order).
public enum PartitionBuilder {
    /// What a build produces.
    public struct Result: Sendable {
        /// `partitions × dimension` floats, row-major.
        public var centroids: [Float]
        /// The partition of every row.
        public var assignment: [Int32]
        public var partitions: Int
    }

    /// The default partition count for `rows` rows: about √rows, so the centroids and one partition cost about the
    /// same to score.
    public static func defaultPartitions(rows: Int) -> Int {
        max(1, min(65_535, Int(Double(rows).squareRoot().rounded())))
    }

    /// Builds `partitions` partitions (fewer if there are fewer rows) of `vectors`' rows.
    ///
    /// - Parameters:
    ///   - sampleRows: rows the centroids are trained on (default: 128 per partition, at least 50 000, at most all).
    ///   - iterations: Lloyd iterations over the sample.
    ///   - progress: called with (done, total) steps.
    /// - Complexity: O((iterations × sample + rows) × partitions × dimension).
    public static func build(
        vectors: VectorMatrix, partitions requested: Int, seed: UInt64, threads: Int, iterations: Int = 10,
        sampleRows: Int? = nil, progress: (Int, Int) -> Void = { _, _ in }
    ) -> Result {
        let n = vectors.count
        let d = vectors.dimension
        let padded = (d + 15) & ~15
        let partitions = max(1, min(requested, n))
        guard n > 0 else { return Result(centroids: [], assignment: [], partitions: 0) }
        var random = SplitMix64(seed: seed)
        // The sample: a seeded partial shuffle of the row ids.
        let sampleCount = min(n, sampleRows ?? max(50_000, 128 * partitions))
        var ids = Array(0..<Int32(n))
        for i in 0..<sampleCount {
            let j = i + Int(random.next() % UInt64(n - i))
            ids.swapAt(i, j)
        }
        let sample = Array(ids[0..<sampleCount]).sorted()
        let sampleMatrix = decode(vectors, rows: sample, padded: padded)
        // Initial centroids: the first `partitions` sampled rows in shuffled order (distinct rows).
        var centroids = [Float](repeating: 0, count: partitions * padded)
        let firstChosen = Array(ids[0..<partitions])
        let initial = decode(vectors, rows: firstChosen, padded: padded)
        centroids.replaceSubrange(0..<(partitions * padded), with: initial)
        let totalSteps = iterations + 1
        for iteration in 0..<iterations {
            let assignment = assign(sampleMatrix, count: sampleCount, centroids, partitions, padded, threads)
            centroids = means(
                sampleMatrix, assignment, partitions, padded, previous: centroids, random: &random)
            progress(iteration + 1, totalSteps)
        }
        // Every row, in chunks so the f32 copy stays small.
        var assignment = [Int32](repeating: 0, count: n)
        let chunk = 65_536
        var start = 0
        while start < n {
            let end = min(start + chunk, n)
            let block = decode(vectors, rows: Array(Int32(start)..<Int32(end)), padded: padded)
            let part = assign(block, count: end - start, centroids, partitions, padded, threads)
            assignment.replaceSubrange(start..<end, with: part)
            start = end
        }
        progress(totalSteps, totalSteps)
        var packed = [Float](repeating: 0, count: partitions * d)
        for p in 0..<partitions {
            for j in 0..<d { packed[p * d + j] = centroids[p * padded + j] }
        }
        return Result(centroids: packed, assignment: assignment, partitions: partitions)
    }

    /// Rows of `vectors` as `f32`, each zero-padded to `padded` floats.
    private static func decode(_ vectors: VectorMatrix, rows: [Int32], padded: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows.count * padded)
        out.withUnsafeMutableBufferPointer { buffer in
            for (index, row) in rows.enumerated() {
                vectors.decodeRow(
                    Int(row),
                    into: UnsafeMutableBufferPointer(
                        rebasing: buffer[(index * padded)..<(index * padded + vectors.dimension)]))
            }
        }
        return out
    }

    /// Chunks the work is split into, independent of the thread count (determinism).
    private static let chunks = 64

    /// The nearest centroid (squared Euclidean) of each of `count` padded rows; ties go to the lower partition.
    private static func assign(
        _ rows: [Float], count: Int, _ centroids: [Float], _ partitions: Int, _ padded: Int, _ threads: Int
    ) -> [Int32] {
        var norms = [Float](repeating: 0, count: partitions)
        centroids.withUnsafeBufferPointer { c in
            for p in 0..<partitions { norms[p] = dot(c.baseAddress! + p * padded, c.baseAddress! + p * padded, padded) }
        }
        var result = [Int32](repeating: 0, count: count)
        let perChunk = (count + chunks - 1) / chunks
        result.withUnsafeMutableBufferPointer { output in
            let out = UncheckedPointer(output.baseAddress!)
            rows.withUnsafeBufferPointer { r in
                centroids.withUnsafeBufferPointer { c in
                    norms.withUnsafeBufferPointer { norm in
                        let (rowBase, centroidBase, normBase) = (
                            UncheckedPointer(r.baseAddress!), UncheckedPointer(c.baseAddress!),
                            UncheckedPointer(norm.baseAddress!)
                        )
                        runChunks(threads: threads) { chunk in
                            let low = chunk * perChunk
                            let high = min(count, low + perChunk)
                            guard low < high else { return }
                            for i in low..<high {
                                let x = rowBase.pointer + i * padded
                                var best: Int32 = 0
                                var bestDistance = Float.infinity
                                for p in 0..<partitions {
                                    // |x − c|² − |x|² = |c|² − 2 x·c: the row's own norm does not change the order.
                                    let distance =
                                        normBase.pointer[p] - 2 * dot(x, centroidBase.pointer + p * padded, padded)
                                    if distance < bestDistance {
                                        bestDistance = distance
                                        best = Int32(p)
                                    }
                                }
                                out.mutable[i] = best
                            }
                        }
                    }
                }
            }
        }
        return result
    }

    /// The mean of each partition's rows. A partition left empty takes a row of the largest partition (seeded), so
    /// the count never shrinks.
    private static func means(
        _ rows: [Float], _ assignment: [Int32], _ partitions: Int, _ padded: Int, previous: [Float],
        random: inout SplitMix64
    ) -> [Float] {
        var sums = [Double](repeating: 0, count: partitions * padded)
        var counts = [Int](repeating: 0, count: partitions)
        for (i, p) in assignment.enumerated() {
            let partition = Int(p)
            counts[partition] += 1
            let base = partition * padded
            for j in 0..<padded { sums[base + j] += Double(rows[i * padded + j]) }
        }
        var centroids = previous
        let largest = counts.indices.max { counts[$0] < counts[$1] } ?? 0
        let largestMembers = assignment.indices.filter { assignment[$0] == Int32(largest) }
        for p in 0..<partitions {
            if counts[p] > 0 {
                for j in 0..<padded { centroids[p * padded + j] = Float(sums[p * padded + j] / Double(counts[p])) }
            } else if !largestMembers.isEmpty {
                let member = largestMembers[Int(random.next() % UInt64(largestMembers.count))]
                for j in 0..<padded { centroids[p * padded + j] = rows[member * padded + j] }
            }
        }
        return centroids
    }

    /// Runs `body` for every chunk on up to `threads` threads.
    private static func runChunks(threads: Int, _ body: @escaping @Sendable (Int) -> Void) {
        if threads <= 1 {
            for chunk in 0..<chunks { body(chunk) }
        } else {
            DispatchQueue.concurrentPerform(iterations: chunks, execute: body)
        }
    }

    @inline(__always)
    private static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ padded: Int) -> Float {
        var sum = SIMD16<Float>()
        var j = 0
        while j < padded {
            let x = UnsafeRawPointer(a + j).loadUnaligned(as: SIMD16<Float>.self)
            let y = UnsafeRawPointer(b + j).loadUnaligned(as: SIMD16<Float>.self)
            sum += x * y
            j += 16
        }
        return sum.sum()
    }
}

/// A pointer handed to the chunk workers, each of which touches disjoint elements.
private struct UncheckedPointer<Element>: @unchecked Sendable {
    let mutable: UnsafeMutablePointer<Element>
    var pointer: UnsafePointer<Element> { UnsafePointer(mutable) }

    init(_ pointer: UnsafeMutablePointer<Element>) { mutable = pointer }
    init(_ pointer: UnsafePointer<Element>) { mutable = UnsafeMutablePointer(mutating: pointer) }
}

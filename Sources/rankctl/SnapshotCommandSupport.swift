import ArgumentParser
import CommandSupport
import Foundation
import Snapshot
import VectorIndex

/// Shared plumbing for the snapshot subcommands (build, verify, inspect, synth).
enum SnapshotCommandSupport {
    /// Runs `body`; a `SnapshotError` becomes one line on stderr and exit status 1.
    static func run(_ command: String, _ body: () throws(SnapshotError) -> Void) throws {
        do {
            try body()
        } catch {
            FileHandle.standardError.write(Data("rankctl \(command): error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }

    /// Progress on stderr, rewritten in place, only when stderr is a terminal.
    static func progressPrinter(enabled: Bool) -> (@Sendable (SnapshotBuildProgress) -> Void)? {
        guard enabled, isatty(STDERR_FILENO) == 1 else { return nil }
        return { progress in
            let percent = progress.total > 0 ? 100 * progress.done / progress.total : 100
            FileHandle.standardError.write(
                Data("\r\u{1B}[K\(progress.stage): \(progress.done)/\(progress.total) (\(percent)%)".utf8))
        }
    }

    static func endProgressLine(enabled: Bool) {
        if enabled, isatty(STDERR_FILENO) == 1 { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }

    static func parse<T: RawRepresentable & CaseIterable>(_ value: String, as _: T.Type, option: String) throws -> T
    where T.RawValue == String {
        guard let parsed = T(rawValue: value) else {
            throw ValidationError(
                "\(option) must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(value)\"")
        }
        return parsed
    }

    static func byteCount(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }
}

/// Options describing how vectors are stored and indexed, shared by `build` and `synth --snapshot`.
struct SnapshotEncodingOptions: ParsableArguments {
    @Option(help: "Vector storage: f32, f16 or i8 (per-row scale).")
    var vectorType = "f32"

    @Option(help: "Similarity metric: ip, cosine or l2.")
    var metric = "ip"

    @Flag(help: "Do not build the HNSW item graph.")
    var noIndex = false

    @Option(help: "HNSW: links per node (M).")
    var hnswM = 16

    @Option(help: "HNSW: candidate list size while building.")
    var efConstruction = 200

    @Option(help: "HNSW: level seed.")
    var hnswSeed: UInt64 = 42

    @Option(
        help: ArgumentHelp(
            "Categories and brands with at least this many items get a quantised value index (0: none).",
            discussion: "A filter on such a value scans its i8 block and re-scores the best exactly (docs/INDEX.md)."))
    var quantisedMinItems = SnapshotBuildOptions.defaultQuantisedMinItems

    @Option(
        help: ArgumentHelp(
            "Categories and brands with at least this many items also get their own HNSW graph (0: none).",
            discussion: "A filter on such a value walks that graph instead of scanning (docs/INDEX.md)."))
    var subgraphMinItems = SnapshotBuildOptions.defaultSubgraphMinItems

    @Option(
        help: ArgumentHelp(
            "Partitions for deep candidate pools (default: about √items; 0: none).",
            discussion: "k-means groups of the items, scanned best centroid first (docs/INDEX.md \"Partitions\")."))
    var partitions: Int?

    @Option(help: "Build partitions only for catalogues of at least this many items.")
    var partitionMinItems = SnapshotBuildOptions.defaultPartitionMinItems

    @Flag(
        help: ArgumentHelp(
            "Do not write the int8 copy of the item vectors (item_walk.i8) that the graph walk scores.",
            discussion: "The walk re-scores its best candidates exactly (docs/INDEX.md \"Quantised walk\")."))
    var noInt8Walk = false

    @Option(
        help: ArgumentHelp(
            "Write item_walk.i8 only when the item vectors take at least this many MiB as f32 (0: always).",
            discussion: "Below it the f32 vectors stay in cache and the f32 walk is faster (docs/INDEX.md)."))
    var int8WalkMinMib = SnapshotBuildOptions.defaultInt8WalkMinVectorBytes >> 20

    @Option(help: "Worker threads for the graph build (default: every core this process may run on).")
    var threads: Int?

    @Option(help: "JSON file with the ranking config object stored in the manifest.")
    var rankingConfig: String?

    @Option(name: .customLong("label"), help: "A free-form manifest label KEY=VALUE (repeatable).")
    var labels: [String] = []

    @Flag(help: "No progress output.")
    var quiet = false

    func validate() throws {
        _ = try SnapshotCommandSupport.parse(vectorType, as: VectorElementType.self, option: "--vector-type")
        _ = try SnapshotCommandSupport.parse(metric, as: Metric.self, option: "--metric")
        guard subgraphMinItems >= 0, quantisedMinItems >= 0, partitionMinItems >= 0 else {
            throw ValidationError("--subgraph-min-items, --quantised-min-items and --partition-min-items must be ≥ 0")
        }
        guard (0...(1 << 30)).contains(int8WalkMinMib) else {
            throw ValidationError("--int8-walk-min-mib must be from 0 to \(1 << 30), got \(int8WalkMinMib)")
        }
        if let partitions, !(0...65_535).contains(partitions) {
            throw ValidationError("--partitions must be from 0 to 65535, got \(partitions)")
        }
        for label in labels where !label.contains("=") {
            throw ValidationError("--label must be KEY=VALUE, got \"\(label)\"")
        }
    }

    /// Fills the encoding part of `options`.
    func apply(to options: inout SnapshotBuildOptions) throws {
        options.vectorType = try SnapshotCommandSupport.parse(
            vectorType, as: VectorElementType.self, option: "--vector-type")
        options.metric = try SnapshotCommandSupport.parse(metric, as: Metric.self, option: "--metric")
        options.buildIndex = !noIndex
        options.hnsw = HNSWParameters(m: hnswM, efConstruction: efConstruction, seed: hnswSeed)
        options.subgraphMinItems = subgraphMinItems
        options.quantisedMinItems = quantisedMinItems
        options.partitions = partitions
        options.partitionMinItems = partitionMinItems
        options.int8Walk = !noInt8Walk
        options.int8WalkMinVectorBytes = int8WalkMinMib << 20
        options.threads = max(1, threads ?? CPUAffinity.usableCores(limit: options.threads))
        for label in labels {
            let parts = label.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            options.labels[String(parts[0])] = String(parts[1])
        }
        if let rankingConfig {
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: rankingConfig)) } catch {
                throw ValidationError("--ranking-config \(rankingConfig): \(error.localizedDescription)")
            }
            do { options.rankingConfig = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
                throw ValidationError("--ranking-config \(rankingConfig): not valid JSON")
            }
        }
    }

    /// Builds, printing progress when allowed, and prints a one-line summary.
    func build(_ options: SnapshotBuildOptions) throws(SnapshotError) {
        let started = Date()
        let manifest = try SnapshotBuilder.build(
            options, progress: SnapshotCommandSupport.progressPrinter(enabled: !quiet))
        SnapshotCommandSupport.endProgressLine(enabled: !quiet)
        let bytes = manifest.files.reduce(0) { $0 + $1.size }
        print(
            "built snapshot \(manifest.snapshotVersion) at \(options.output): \(manifest.counts.users) users, "
                + "\(manifest.counts.items) items, dim \(manifest.dimension) \(manifest.vectorType), "
                + "\(SnapshotCommandSupport.byteCount(bytes)) in \(String(format: "%.2f", Date().timeIntervalSince(started))) s"
        )
    }
}

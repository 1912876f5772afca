import ArgumentParser
import Foundation
import Snapshot

/// `rankctl synth`: deterministic demo inputs, optionally compiled straight into a snapshot.
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Generate deterministic demo data: users.npy, users.txt, items.npy, items.jsonl.")

    @Option(help: "Directory for the generated inputs (created if needed).")
    var out: String

    @Option(help: "Number of users.")
    var users = 50_000

    @Option(help: "Number of items.")
    var items = 20_000

    @Option(help: "Embedding dimension.")
    var dim = 32

    @Option(help: "Random seed; the same seed and sizes give byte-identical files.")
    var seed: UInt64 = 42

    @Option(help: "Number of categories.")
    var categories = 20

    @Option(help: "Also build a snapshot into this directory (must not exist).")
    var snapshot: String?

    @OptionGroup var encoding: SnapshotEncodingOptions

    func validate() throws {
        guard users >= 0, items >= 0, dim > 0, categories > 0 else {
            throw ValidationError("--users/--items must be ≥ 0, --dim and --categories ≥ 1")
        }
    }

    func run() throws {
        var options = SyntheticDataOptions()
        options.users = users
        options.items = items
        options.dimension = dim
        options.seed = seed
        options.categories = categories
        var build: SnapshotBuildOptions? = nil
        try SnapshotCommandSupport.run("synth") { () throws(SnapshotError) in
            let files = try SyntheticData.write(options, to: out)
            print("wrote \(files.users), \(files.userIds), \(files.items), \(files.itemsMeta)")
            if let snapshot {
                build = SnapshotBuildOptions(
                    users: files.users, userIds: files.userIds, items: files.items, itemsMeta: files.itemsMeta,
                    output: snapshot)
            }
        }
        guard var build else { return }
        try encoding.apply(to: &build)
        let ready = build
        try SnapshotCommandSupport.run("synth") { () throws(SnapshotError) in try encoding.build(ready) }
    }
}

import ArgumentParser
import Snapshot

/// `rankctl build`: compile embeddings and a catalogue into a snapshot directory.
struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build a snapshot from users.npy/users.txt and items.npy/items.jsonl.",
        discussion: "Writes into a temporary directory beside --out and renames it into place when complete.")

    @Option(help: "User embeddings (.npy, float32/float64, C order, shape users × dim).")
    var users: String

    @Option(help: "User ids, one per line, in row order.")
    var userIds: String

    @Option(help: "Item embeddings (.npy, shape items × dim).")
    var items: String

    @Option(help: "Item catalogue, one JSON object per line, in row order.")
    var itemsMeta: String

    @Option(help: "Snapshot directory to create (must not exist); its name is the snapshot version.")
    var out: String

    @Option(name: .customLong("snapshot-version"), help: "Snapshot version (default: the --out directory name).")
    var snapshotVersion: String?

    @OptionGroup var encoding: SnapshotEncodingOptions

    func run() throws {
        var options = SnapshotBuildOptions(
            users: users, userIds: userIds, items: items, itemsMeta: itemsMeta, output: out)
        options.snapshotVersion = snapshotVersion
        try encoding.apply(to: &options)
        try SnapshotCommandSupport.run("build") { () throws(SnapshotError) in try encoding.build(options) }
    }
}

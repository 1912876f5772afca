import Foundation
public import RankingModel
import Snapshot

/// A scratch directory with small seeded snapshots built on demand, a snapshot root inside it, and
/// the publish messages (header, chunks) a publishing job would send for a built snapshot.
/// The directory is removed when the fixture is released.
public final class SnapshotRootFixture {
    public let directory: String
    public var root: String { directory + "/root" }

    public init() throws {
        directory = NSTemporaryDirectory() + "snapshot-fixture-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// Builds snapshot `version` (120 items, 30 users, seeded by `seed`, `dimension`-wide) outside
    /// the root and returns its directory.
    public func build(_ version: String, seed: UInt64 = 1, dimension: Int = 8) throws -> String {
        var data = SyntheticDataOptions()
        data.users = 30
        data.items = 120
        data.dimension = dimension
        data.categories = 3
        data.seed = seed
        let name = "\(version)-\(seed)-\(dimension)"
        let files = try SyntheticData.write(data, to: directory + "/in-" + name)
        var options = SnapshotBuildOptions(
            users: files.users, userIds: files.userIds, items: files.items, itemsMeta: files.itemsMeta,
            output: directory + "/built-" + name)
        options.snapshotVersion = version
        options.threads = 1
        options.hnsw.efConstruction = 20
        try SnapshotBuilder.build(options)
        return options.output
    }

    /// The header a publisher sends for the snapshot in `built`.
    public func header(_ built: String, activate: Bool = false) throws -> PublishHeader {
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: built + "/manifest.json")))
        let manifest = try SnapshotManifest.parse(Data(bytes), file: "manifest.json")
        return PublishHeader(
            version: manifest.snapshotVersion, manifest: bytes,
            files: manifest.files.map { PublishFileInfo(name: $0.name, size: $0.size, xxh64: $0.xxh64) },
            activate: activate)
    }

    /// The chunks a publisher sends for `header`'s files from `built`, `size` bytes each.
    public func chunks(_ built: String, header: PublishHeader, size: Int = 1024) -> [PublishChunk] {
        var chunks: [PublishChunk] = []
        for file in header.files {
            guard let data = FileManager.default.contents(atPath: built + "/" + file.name) else { continue }
            var offset = 0
            while offset < data.count {
                let end = min(offset + size, data.count)
                chunks.append(PublishChunk(path: file.name, offset: offset, data: Array(data[offset..<end])))
                offset = end
            }
        }
        return chunks
    }

    /// Whether `name` exists in the root.
    public func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: root + "/" + name) }

    /// What the root's staging directory holds.
    public func stagingEntries() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: root + "/.staging")
    }
}

import Foundation
import RankingEngine
import Snapshot
import SnapshotLifecycle

/// A small seeded catalogue, its `rankctl build` inputs, a snapshot built from them and an engine
/// serving it: what the targets feed their bytes into. Built once per process in a temporary
/// directory that is removed at exit.
final class FuzzFixture: Sendable {
    let directory: String
    let inputs: SyntheticDataFiles
    /// The snapshot directory (never modified: targets copy it).
    let snapshotDirectory: String
    let engine: RankingEngine
    /// Item and user ids that exist in the snapshot, for seeds.
    let itemIDs: [String]
    let userIDs: [String]

    static let shared: FuzzFixture = {
        do {
            let fixture = try FuzzFixture()
            atexit { try? FileManager.default.removeItem(atPath: FuzzFixture.shared.directory) }
            return fixture
        } catch {
            fatalError("fuzz fixture: \(error)")
        }
    }()

    static func buildOptions(_ inputs: SyntheticDataFiles, output: String) -> SnapshotBuildOptions {
        var options = SnapshotBuildOptions(
            users: inputs.users, userIds: inputs.userIds, items: inputs.items, itemsMeta: inputs.itemsMeta,
            output: output)
        options.snapshotVersion = "v-fuzz"
        options.threads = 1
        options.hnsw.efConstruction = 16
        options.rankingConfig = .object([
            "k": .number(5), "poolSize": .number(20), "method": .string("mmr"), "tradeoff": .number(0.7),
            "experiments": .array([
                .object([
                    "name": .string("exp"), "salt": .string("s"),
                    "arms": .array([
                        .object(["name": .string("control"), "weight": .number(50)]),
                        .object(["name": .string("dpp"), "weight": .number(50), "method": .string("dpp")]),
                    ]),
                ])
            ]),
        ])
        return options
    }

    private init() throws {
        directory = NSTemporaryDirectory() + "rankd-fuzz-\(getpid())-" + UUID().uuidString
        var data = SyntheticDataOptions()
        data.users = 12
        data.items = 40
        data.dimension = 4
        data.categories = 3
        data.brandsPerCategory = 2
        data.seed = 7
        inputs = try SyntheticData.write(data, to: directory + "/in")
        snapshotDirectory = directory + "/snapshot"
        try SnapshotBuilder.build(Self.buildOptions(inputs, output: snapshotDirectory))
        let serving = try ServingSnapshot.load(directory: snapshotDirectory)
        engine = RankingEngine(registry: SnapshotRegistry(serving))
        let snapshot = serving.snapshot
        itemIDs = (0..<min(snapshot.itemIds.count, 8)).compactMap { snapshot.itemIds.id(at: $0) }
        userIDs = (0..<min(snapshot.userIds.count, 4)).compactMap { snapshot.userIds.id(at: $0) }
    }

    /// A fresh scratch directory under the fixture's, removed by the caller.
    func scratchDirectory(_ name: String) -> String {
        let path = directory + "/" + name + "-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

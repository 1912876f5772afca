import Foundation
import RankingModel
import Snapshot
import SnapshotLifecycle
import Testing

@testable import RankingEngine

/// A snapshot with `item_walk.i8` and no partitions, so unfiltered Rank walks the graph: served with the int8 walk
/// and without it, the rankings must agree (the walk's candidates are re-scored exactly).
@Suite struct Int8WalkRankTests {
    final class Fixture: Sendable {
        let directory: String
        let snapshotDirectory: String
        let int8: ServingSnapshot
        let exact: ServingSnapshot

        static let shared: Fixture = {
            do { return try Fixture() } catch { fatalError("int8 walk fixture: \(error)") }
        }()

        private init() throws {
            directory = NSTemporaryDirectory() + "int8-walk-tests-" + UUID().uuidString
            var data = SyntheticDataOptions()
            data.users = 60
            data.items = 3000
            data.dimension = 16
            data.categories = 4
            data.seed = 11
            let files = try SyntheticData.write(data, to: directory + "/in")
            snapshotDirectory = directory + "/snap"
            var options = SnapshotBuildOptions(
                users: files.users, userIds: files.userIds, items: files.items, itemsMeta: files.itemsMeta,
                output: snapshotDirectory)
            options.threads = 2
            options.hnsw.efConstruction = 60
            options.partitions = 0
            options.int8WalkMinVectorBytes = 0  // 3000 × 16 is far below the default size threshold
            options.rankingConfig = .object([
                "k": .number(10), "poolSize": .number(10), "method": .string("none"), "efSearch": .number(64),
            ])
            try SnapshotBuilder.build(options)
            int8 = try ServingSnapshot.load(directory: snapshotDirectory)
            exact = try ServingSnapshot(snapshot: int8.snapshot, int8Walk: false)
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }
    }

    let fixture = Fixture.shared

    @Test func theSectionIsServedAsTheWalkUnlessTurnedOff() throws {
        #expect(fixture.int8.snapshot.walkVectors != nil)
        #expect(fixture.int8.index?.walkVectors != nil)
        #expect(fixture.exact.index != nil && fixture.exact.index?.walkVectors == nil)
        #expect(fixture.int8.partitions == nil)
    }

    @Test func rankingsAgreeWithTheExactWalk() throws {
        let fast = RankingEngine(registry: SnapshotRegistry(fixture.int8))
        let slow = RankingEngine(registry: SnapshotRegistry(fixture.exact))
        var identical = 0
        var overlap = 0.0
        for user in 0..<60 {
            let call = request { $0.userID = "u_\(user)" }
            let got = try fast.rank(call, now: 0)
            let want = try slow.rank(call, now: 0)
            #expect(got.items.count == want.items.count && got.items.count == 10)
            // Scores are exact for every returned item, whichever walk found it.
            let wanted = Dictionary(want.items.map { ($0.itemID, $0.score) }, uniquingKeysWith: { a, _ in a })
            for item in got.items where wanted[item.itemID] != nil {
                #expect(item.score == wanted[item.itemID]!, "\(item.itemID)")
            }
            if got.items.map(\.itemID) == want.items.map(\.itemID) { identical += 1 }
            overlap += Double(Set(got.items.map(\.itemID)).intersection(wanted.keys).count) / 10
        }
        // The two walks visit different rows, so a near-tie may differ; on this fixture they agree.
        #expect(overlap / 60 >= 0.99, "overlap \(overlap / 60)")
        #expect(identical >= 57, "\(identical) of 60 identical")
    }

    @Test func aCorruptWalkSectionNeverGoesLive() throws {
        let copy = fixture.directory + "/corrupt-" + UUID().uuidString
        try FileManager.default.copyItem(atPath: fixture.snapshotDirectory, toPath: copy)
        let path = copy + "/" + SnapshotFiles.walkVectors
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[128 + 4] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: ServingSnapshotError.self) { _ = try ServingSnapshot.load(directory: copy) }
        #expect("\(error!)".contains(SnapshotFiles.walkVectors), "\(error!)")
    }
}

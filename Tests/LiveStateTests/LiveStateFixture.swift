import Foundation
import Snapshot
import Synchronization

@testable import LiveState

/// One small seeded snapshot without a graph (built once per test process), and a fresh directory per
/// test for the log.
final class LiveStateFixture: Sendable {
    let directory: String
    let snapshot: Snapshot

    static let shared: LiveStateFixture = {
        do {
            return try LiveStateFixture()
        } catch {
            fatalError("live state fixture: \(error)")
        }
    }()

    private init() throws {
        directory = NSTemporaryDirectory() + "live-state-tests-" + UUID().uuidString
        var data = SyntheticDataOptions()
        data.users = 50
        data.items = 300
        data.dimension = 8
        data.categories = 4
        data.seed = 5
        let files = try SyntheticData.write(data, to: directory + "/in")
        var options = SnapshotBuildOptions(
            users: files.users, userIds: files.userIds, items: files.items, itemsMeta: files.itemsMeta,
            output: directory + "/snap")
        options.snapshotVersion = "v-live"
        options.buildIndex = false
        options.threads = 1
        options.labels = ["dataAsOf": "2026-01-01T00:00:00Z"]
        try SnapshotBuilder.build(options)
        snapshot = try Snapshot.open(directory: directory + "/snap")
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// The snapshot's data time (the `dataAsOf` label), Unix milliseconds.
    static let builtAt: Int64 = 1_767_225_600_000

    /// A fresh, empty log directory.
    func logDirectory() -> String {
        directory + "/live-" + UUID().uuidString
    }
}

/// A clock tests move by hand.
final class TestClock: Sendable {
    let now: Atomic<Int64>
    init(_ start: Int64) { now = Atomic(start) }
    var function: @Sendable () -> Int64 { { self.now.load(ordering: .relaxed) } }
    func set(_ value: Int64) { now.store(value, ordering: .relaxed) }
}

/// Runs an asynchronous overlay call and waits for its completion.
func wait<T: Sendable>(
    _ call: (@escaping @Sendable (Result<T, LiveStateError>) -> Void) -> Void
) -> Result<T, LiveStateError> {
    let done = DispatchSemaphore(value: 0)
    let box = Mutex<Result<T, LiveStateError>?>(nil)
    call { result in
        box.withLock { $0 = result }
        done.signal()
    }
    done.wait()
    return box.withLock { $0! }
}

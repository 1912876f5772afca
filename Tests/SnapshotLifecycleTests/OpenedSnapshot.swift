import Snapshot
import SnapshotLifecycle
import Synchronization

/// The smallest serving form of a snapshot: the opened, verified files and nothing derived. Lets
/// the lifecycle be tested without the engine (which adds the ranking config and the graph).
final class OpenedSnapshot: ServableSnapshot {
    let snapshot: Snapshot
    let mappedBytes: Int

    private static let live = Atomic<Int>(0)
    private static let liveBytes = Atomic<Int>(0)

    static var mappedSnapshots: (count: Int, bytes: Int) {
        (live.load(ordering: .relaxed), liveBytes.load(ordering: .relaxed))
    }

    private init(_ snapshot: Snapshot) {
        self.snapshot = snapshot
        mappedBytes = snapshot.fileSizes.reduce(0) { $0 + $1.bytes }
        Self.live.add(1, ordering: .relaxed)
        Self.liveBytes.add(mappedBytes, ordering: .relaxed)
    }

    deinit {
        Self.live.subtract(1, ordering: .relaxed)
        Self.liveBytes.subtract(mappedBytes, ordering: .relaxed)
    }

    static func load(directory: String, verifyChecksums: Bool, verifyStructure: Bool, prefault: Bool) throws
        -> OpenedSnapshot
    {
        let snapshot = try Snapshot.open(directory: directory)
        if verifyChecksums { try snapshot.verifyChecksums() }
        if verifyStructure { try snapshot.verifyStructure() }
        if prefault { _ = snapshot.prefault() }
        return OpenedSnapshot(snapshot)
    }
}

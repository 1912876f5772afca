import Foundation
public import LiveState
public import Snapshot
public import SnapshotLifecycle
import Synchronization
public import VectorIndex

/// A snapshot ready to serve: the mapped files plus what is derived from them once, at
/// activation (the decoded ranking config, the HNSW index over the item vectors).
///
/// Immutable and `Sendable`; requests hold a reference for their whole duration, so the mapping
/// outlives every request that started on it.
public final class ServingSnapshot: ServableSnapshot {
    public let snapshot: Snapshot
    /// `nil` when the snapshot has no graph: retrieval is then an exact scan.
    public let index: HNSWIndex?
    public let config: RankingConfig
    /// Per-condition item counts for estimating a filter's pass count (see ``FilterStatistics``).
    let filterStatistics: FilterStatistics
    /// The snapshot's category and brand value indexes (docs/INDEX.md "Attribute subgraphs"), validated at
    /// activation.
    let valueIndexes: ValueIndexes
    /// The items' partitions for deep pools (docs/INDEX.md "Partitions"), validated at activation; nil when the
    /// snapshot has none.
    let partitions: PartitionIndex?
    /// The items under their event keys (recorded events name items by key).
    let itemKeys: ItemKeyIndex

    /// Bytes of the snapshot's mapped files.
    public let mappedBytes: Int

    /// The live overlay's view of this snapshot, set once: by ``attach(_:)`` before the snapshot is
    /// made active (snapshot root), else at the first read (a snapshot served on its own: no changes).
    private let overlaySlot = AtomicLazyReference<OverlayBinding>()

    /// The live changes (item updates, deleted users) this snapshot serves with. Lock-free.
    public var overlay: OverlayBinding {
        overlaySlot.load() ?? overlaySlot.storeIfNil(.unchanging(snapshot))
    }

    /// Binds `live`'s changes to this snapshot. Call before the snapshot serves (the store's
    /// before-swap hook); a snapshot that already has a view keeps it.
    public func attach(_ live: LiveOverlay) {
        guard overlaySlot.load() == nil else { return }
        _ = overlaySlot.storeIfNil(live.bind(snapshot))
    }

    private static let int8WalkSetting = Atomic<Bool>(true)

    /// Whether snapshots derived from now on walk their graph over the snapshot's `i8` walk rows when it has them
    /// (docs/INDEX.md "Quantised walk"); true by default. Process-wide, because the store loads snapshots through
    /// ``load(directory:verifyChecksums:verifyStructure:prefault:)``; rankd sets it once at startup
    /// (`--no-int8-walk`). A snapshot already serving keeps the walk it was derived with.
    public static var int8Walk: Bool {
        get { int8WalkSetting.load(ordering: .relaxed) }
        set { int8WalkSetting.store(newValue, ordering: .relaxed) }
    }

    private static let liveCount = Atomic<Int>(0)
    private static let liveBytes = Atomic<Int>(0)

    /// Serving snapshots alive in this process (so still mapped): the active one plus any old one
    /// that in-flight requests still hold. A reload that leaks mappings shows up here.
    public static var mappedSnapshots: (count: Int, bytes: Int) {
        (liveCount.load(ordering: .relaxed), liveBytes.load(ordering: .relaxed))
    }

    /// Derives the serving state of an opened snapshot.
    ///
    /// `int8Walk`: walk the graph over the snapshot's `i8` walk rows when it has them (default: ``int8Walk``).
    ///
    /// - Throws: ``ServingSnapshotError`` when the ranking config or the graph is unusable.
    public init(snapshot: Snapshot, int8Walk: Bool = ServingSnapshot.int8Walk) throws(ServingSnapshotError) {
        self.snapshot = snapshot
        mappedBytes = snapshot.fileSizes.reduce(0) { $0 + $1.bytes }
        do {
            config = try RankingConfig.decode(snapshot.manifest.rankingConfigJSON)
        } catch {
            throw ServingSnapshotError("snapshot \(snapshot.manifest.snapshotVersion): \(error.description)")
        }
        do {
            if let graph = try snapshot.loadGraph() {
                index = try HNSWIndex(
                    vectors: snapshot.itemVectors.matrix, graph: graph,
                    walkVectors: int8Walk ? snapshot.walkVectors?.matrix : nil)
            } else {
                index = nil
            }
        } catch {
            throw ServingSnapshotError("snapshot \(snapshot.manifest.snapshotVersion): graph: \(error)")
        }
        do {
            valueIndexes = ValueIndexes(
                try snapshot.loadValueIndexes(), categories: snapshot.categories.count, brands: snapshot.brands.count)
        } catch {
            throw ServingSnapshotError("snapshot \(snapshot.manifest.snapshotVersion): \(error)")
        }
        do {
            partitions = try snapshot.loadPartitions()
        } catch {
            throw ServingSnapshotError("snapshot \(snapshot.manifest.snapshotVersion): \(error)")
        }
        itemKeys = ItemKeyIndex(ids: snapshot.itemIds)
        filterStatistics = FilterStatistics(
            attributes: snapshot.attributes, popularity: snapshot.popularity, brands: snapshot.brands.count)
        Self.liveCount.add(1, ordering: .relaxed)
        Self.liveBytes.add(mappedBytes, ordering: .relaxed)
    }

    deinit {
        Self.liveCount.subtract(1, ordering: .relaxed)
        Self.liveBytes.subtract(mappedBytes, ordering: .relaxed)
    }

    /// Opens, fully verifies (checksums and structure), derives and pre-faults the snapshot in
    /// `directory`: everything that must happen before it may serve, off the request path.
    /// `prefault: false` validates without making the pages resident (publish-time validation of a
    /// snapshot that is not activated yet). `verifyChecksums: false, verifyStructure: false` skips
    /// the O(bytes) checks for files this process has already verified unchanged (see
    /// `SnapshotStore`); opening, the header checks and the graph validation always run.
    public static func load(
        directory: String, verifyChecksums: Bool = true, verifyStructure: Bool = true, prefault: Bool = true
    ) throws(ServingSnapshotError)
        -> ServingSnapshot
    {
        let snapshot: Snapshot
        do {
            snapshot = try Snapshot.open(directory: directory)
            if verifyChecksums { try snapshot.verifyChecksums() }
            if verifyStructure { try snapshot.verifyStructure() }
        } catch {
            throw ServingSnapshotError("\(error)")
        }
        let serving = try ServingSnapshot(snapshot: snapshot)
        if prefault { _ = snapshot.prefault() }
        return serving
    }
}

/// A snapshot that cannot serve; the message names the snapshot and the problem.
public struct ServingSnapshotError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

import Foundation
public import Snapshot
import Synchronization

/// The live overlay as seen by one snapshot: its rows with every live change since the snapshot was
/// built. Rank reads it lock-free and never waits for a writer; the overlay's writer thread applies each
/// committed group of changes.
///
/// Concurrency is the left-right scheme (Ramalhete and Correia): two copies of the view, readers on one,
/// the writer changes the other, flips readers over to it, waits until no reader is left on the old one
/// and applies the same changes there. A reader does two atomic increments and one load, whatever a
/// writer is doing; it sees each committed group entirely or not at all, and the same view for its
/// whole call. The writer's wait is bounded by the longest Rank call in flight.
///
/// Thread-safe: ``read(_:)`` from any thread; ``apply(_:)`` from one writer at a time (the overlay's).
public final class OverlayBinding: Sendable {
    /// The snapshot this view is for.
    public let snapshot: Snapshot
    /// Changes accepted at or before this Unix time (milliseconds) are assumed to be in the snapshot
    /// already and are not applied (``LiveOverlay`` "Snapshot time").
    public let builtAt: Int64
    private let left: OverlayViewStorage
    private let right: OverlayViewStorage
    /// 0: readers use `left`; 1: `right`.
    private let leftRight = Atomic<Int>(0)
    /// Which of the two reader counts new readers arrive on.
    private let versionIndex = Atomic<Int>(0)
    private let readers0 = Atomic<Int>(0)
    private let readers1 = Atomic<Int>(0)

    init(snapshot: Snapshot, builtAt: Int64) {
        self.snapshot = snapshot
        self.builtAt = builtAt
        left = OverlayViewStorage(snapshot: snapshot)
        right = OverlayViewStorage(snapshot: snapshot)
    }

    /// A binding that carries no change and never will (a snapshot served without a snapshot root).
    public static func unchanging(_ snapshot: Snapshot) -> OverlayBinding {
        OverlayBinding(snapshot: snapshot, builtAt: .max)
    }

    /// Runs `body` with the current view. Wait-free for the caller; allocates nothing. The columns are
    /// valid only inside `body`.
    @inline(__always)
    public func read<Result, Failure: Error>(
        _ body: (OverlayColumns) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let version = versionIndex.load(ordering: .sequentiallyConsistent)
        arrive(version)
        defer { depart(version) }
        let side = leftRight.load(ordering: .sequentiallyConsistent)
        return try body(side == 0 ? left.columns : right.columns)
    }

    @inline(__always)
    private func arrive(_ version: Int) {
        if version == 0 {
            readers0.wrappingAdd(1, ordering: .sequentiallyConsistent)
        } else {
            readers1.wrappingAdd(1, ordering: .sequentiallyConsistent)
        }
    }

    @inline(__always)
    private func depart(_ version: Int) {
        if version == 0 {
            readers0.wrappingSubtract(1, ordering: .sequentiallyConsistent)
        } else {
            readers1.wrappingSubtract(1, ordering: .sequentiallyConsistent)
        }
    }

    private func readerCount(_ version: Int) -> Int {
        version == 0
            ? readers0.load(ordering: .sequentiallyConsistent) : readers1.load(ordering: .sequentiallyConsistent)
    }

    private func waitForReaders(_ version: Int) {
        var spins = 0
        while readerCount(version) != 0 {
            spins += 1
            // Rank calls last micro- to milliseconds: spin briefly, then sleep in small steps.
            if spins < 100 { sched_yield() } else { usleep(50) }
        }
    }

    /// Applies `changes` to both copies; readers switch to them in one step. Call from one writer
    /// at a time.
    func apply(_ changes: [ResolvedChange]) {
        guard !changes.isEmpty else { return }
        let side = leftRight.load(ordering: .sequentiallyConsistent)
        let (current, next) = side == 0 ? (left, right) : (right, left)
        next.apply(changes)
        leftRight.store(1 - side, ordering: .sequentiallyConsistent)
        // Readers that arrived before the flip may still be on `current`: toggle the arrival count
        // and drain both, as the left-right protocol prescribes, before touching it.
        let version = versionIndex.load(ordering: .sequentiallyConsistent)
        waitForReaders(1 - version)
        versionIndex.store(1 - version, ordering: .sequentiallyConsistent)
        waitForReaders(version)
        current.apply(changes)
    }

    /// Resolves `changes` against this snapshot: ids to rows, tag names to bits; fields changed at or
    /// before ``builtAt`` and names the snapshot does not have are skipped.
    func resolve(_ record: OverlayRecord, into resolved: inout [ResolvedChange]) {
        switch record {
        case .items(let changes):
            for change in changes {
                guard let row = snapshot.itemIds.row(for: change.itemID) else { continue }
                if change.removedAt > builtAt { resolved.append(.removeItem(row)) }
                if change.stockAt > builtAt { resolved.append(.stock(row, change.inStock)) }
                if change.priceAt > builtAt { resolved.append(.price(row, change.priceCents)) }
                for (tag, tagChange) in change.tags where tagChange.at > builtAt {
                    guard let bit = snapshot.tags.row(for: tag), bit < 64 else { continue }
                    resolved.append(.tag(row, bit: bit, add: tagChange.add))
                }
            }
        case .userDeletions(let deletions):
            for deletion in deletions where deletion.at > builtAt {
                if let row = snapshot.userIds.row(for: deletion.userID) { resolved.append(.deleteUser(row)) }
            }
        }
    }
}

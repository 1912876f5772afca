import Synchronization

/// The active snapshot: one reference that requests read once at their start and a publisher
/// swaps atomically. A request never sees two versions; the old snapshot is unmapped when the
/// last request holding it finishes (it is released with its last reference).
///
/// Thread-safe. Reading takes a very short lock (a retain under a mutex, tens of nanoseconds),
/// never held across any work.
public final class SnapshotRegistry: Sendable {
    private let active = Mutex<ServingSnapshot?>(nil)

    public init(_ initial: ServingSnapshot? = nil) {
        active.withLock { $0 = initial }
    }

    /// The active snapshot, or `nil` before the first activation.
    public func current() -> ServingSnapshot? {
        active.withLock { $0 }
    }

    /// Makes `snapshot` active and returns the one it replaced.
    @discardableResult
    public func activate(_ snapshot: ServingSnapshot) -> ServingSnapshot? {
        active.withLock { current in
            let previous = current
            current = snapshot
            return previous
        }
    }
}

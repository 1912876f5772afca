import Foundation
public import Synchronization

/// The active snapshot: one reference that requests read once at their start and a publisher
/// swaps atomically. A request never sees two versions; the old snapshot is unmapped when the
/// last request holding it finishes (it is released with its last reference).
///
/// Thread-safe. Reading takes a very short lock (a retain under a mutex, tens of nanoseconds),
/// never held across any work.
public final class SnapshotRegistry<Serving: ServableSnapshot>: Sendable {
    @usableFromInline let active = Mutex<Serving?>(nil)

    public init(_ initial: Serving? = nil) {
        active.withLock { $0 = initial }
    }

    /// The active snapshot, or `nil` before the first activation.
    @inlinable
    public func current() -> Serving? {
        active.withLock { $0 }
    }

    /// Makes `snapshot` active and returns the one it replaced.
    @discardableResult
    public func activate(_ snapshot: Serving) -> Serving? {
        active.withLock { current in
            let previous = current
            current = snapshot
            return previous
        }
    }

    /// Drops `replaced` off the request path: waits (on a background thread, polling every
    /// millisecond for up to `timeout`) until no in-flight request holds it, then releases it
    /// there, so the `munmap` of a large snapshot never runs on an event loop. After the timeout
    /// the last request to finish releases it instead.
    public static func releaseWhenIdle(_ replaced: consuming Serving, timeout: Duration = .seconds(30)) {
        let holder = ReleaseHolder(replaced)
        Thread.detachNewThread {
            let deadline = ContinuousClock.now + timeout
            while !holder.isUnique, ContinuousClock.now < deadline {
                usleep(1000)
            }
            holder.release()
        }
    }
}

/// Owns the last registry-side reference to a replaced snapshot until it is released.
private final class ReleaseHolder<Serving: ServableSnapshot>: @unchecked Sendable {
    // Touched only by the releasing thread after init.
    private var snapshot: Serving?

    init(_ snapshot: consuming Serving) { self.snapshot = snapshot }

    var isUnique: Bool { isKnownUniquelyReferenced(&snapshot) }

    func release() { snapshot = nil }
}

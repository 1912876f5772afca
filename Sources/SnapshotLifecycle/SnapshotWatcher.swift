import Foundation

/// Directory mode: polls the snapshot root and activates every complete version that appears
/// (complete = its `manifest.json` is there, so jobs must move the manifest in last). A version
/// that fails validation is reported once and not retried; the active snapshot keeps serving.
///
/// Runs on its own thread; the first scan only records what is already there.
public final class SnapshotWatcher<Serving: ServableSnapshot>: Sendable {
    private let store: SnapshotStore<Serving>
    private let interval: Duration
    private let log: @Sendable (String) -> Void

    public init(store: SnapshotStore<Serving>, interval: Duration, log: @escaping @Sendable (String) -> Void) {
        self.store = store
        self.interval = interval
        self.log = log
    }

    /// Starts polling on a background thread, for the life of the process.
    public func start() {
        let (store, interval, log) = (self.store, self.interval, self.log)
        Thread.detachNewThread {
            var seen = Set(store.completeVersions())
            while true {
                let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
                Thread.sleep(forTimeInterval: seconds)
                let versions = store.completeVersions()
                // Oldest new arrival first, so the newest ends up active.
                for version in versions.reversed() where !seen.contains(version) {
                    seen.insert(version)
                    guard store.registry.current()?.version != version else { continue }
                    do throws(SnapshotStoreError) {
                        _ = try store.activate(version, by: "watch")
                    } catch {
                        log("directory mode: \(version) not activated: \(error.message)")
                    }
                }
                seen.formIntersection(versions)
            }
        }
    }
}

public import LiveState
import Snapshot
public import SnapshotLifecycle

extension SnapshotStore where Serving == ServingSnapshot {
    /// After an activation: drops from `live`'s log every change that both the active snapshot and the
    /// rollback target already contain (their data times, ``LiveOverlay/builtAt(_:)``), so the log holds
    /// only what some snapshot this root may serve next still needs. A rollback further back than the
    /// rollback target does not get the dropped changes back (docs/OPERATIONS.md "Live updates").
    public func compactLiveOverlay(_ live: LiveOverlay, log: @escaping @Sendable (String) -> Void = { _ in }) {
        guard let active = registry.current() else { return }
        var horizon = LiveOverlay.builtAt(active.snapshot.manifest)
        let rollback = status().rollbackVersion
        if !rollback.isEmpty {
            guard let manifest = try? Snapshot.readManifest(directory: root + "/" + rollback) else { return }
            horizon = min(horizon, LiveOverlay.builtAt(manifest))
        }
        live.compact(horizon: horizon) { result in
            if case .failure(let error) = result { log("live overlay compaction failed: \(error.message)") }
        }
    }
}

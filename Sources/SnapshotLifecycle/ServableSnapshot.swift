public import Snapshot

/// The serving form of a snapshot, as the store and the registry see it: something that can be
/// loaded from a version directory (opened, verified, derived, pre-faulted) and knows the snapshot
/// it serves. The engine's `ServingSnapshot` is the one production conformer; the store is generic
/// over it so that the snapshot lifecycle (root, publish, activation, retention, watching) sits
/// below the engine and knows nothing about ranking.
///
/// Conformers are immutable reference types: requests hold one for their whole duration, and the
/// mapping it owns is released with its last reference.
public protocol ServableSnapshot: AnyObject, Sendable {
    /// Opens, verifies and derives the snapshot in `directory`: everything that must happen before
    /// it may serve. `verifyChecksums: false, verifyStructure: false` skips the O(bytes) checks of
    /// files this process already verified unchanged; `prefault: false` validates without making
    /// the pages resident.
    ///
    /// - Throws: any error whose description names the snapshot and the problem; the store reports
    ///   it as `failedPrecondition`.
    static func load(directory: String, verifyChecksums: Bool, verifyStructure: Bool, prefault: Bool) throws -> Self

    /// The opened snapshot files.
    var snapshot: Snapshot { get }

    /// Bytes of the snapshot's mapped files.
    var mappedBytes: Int { get }

    /// Snapshots of this kind alive in the process (so still mapped) and their bytes: the active
    /// one plus any old one in-flight requests still hold. A reload that leaks mappings shows here.
    static var mappedSnapshots: (count: Int, bytes: Int) { get }
}

extension ServableSnapshot {
    /// The snapshot's version name (its manifest's `snapshotVersion`).
    public var version: String { snapshot.manifest.snapshotVersion }
}

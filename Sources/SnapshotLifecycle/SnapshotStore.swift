import CoreMetrics
import Foundation
import MappedStorage
public import RankingModel
import Snapshot
import Synchronization

/// The snapshot root: where publishes land, which version is active, what is kept.
///
/// Layout of the root directory:
///
/// ```
/// ROOT/
///   .staging/            uploads in progress (one directory each); emptied at every start
///   .active              the active version, JSON, replaced by atomic rename
///   <version>/           one complete snapshot per version (manifest.json present = complete)
/// ```
///
/// A version directory is complete once its `manifest.json` exists: publishes write every file,
/// then the manifest, into a staging directory and rename the whole directory into the root; jobs
/// that write to the root directly (directory mode) must move the manifest in last.
///
/// Activation opens, verifies (checksums and structure), derives and pre-faults the snapshot on
/// the calling thread (never an event loop: the service runs it on its own thread), persists the
/// new active version, then swaps it into the ``SnapshotRegistry`` in one step. The replaced
/// snapshot is released off the request path once the last in-flight request that holds it ends.
///
/// Thread-safe. Mutations (publish commit, activate, rollback, retention) are serialised by one
/// lock; ``status()`` and ``beginPublish(_:)`` may run beside them.
public final class SnapshotStore<Serving: ServableSnapshot>: Sendable {
    /// The snapshot root directory.
    public let root: String
    /// The registry whose active snapshot this store swaps.
    public let registry: SnapshotRegistry<Serving>
    public let options: SnapshotStoreOptions
    /// Called after every swap with the new active version (health, logs).
    private let onActivation: @Sendable (ActivationResult, String) -> Void
    /// Called with a loaded, checked snapshot just before it becomes active (after `.active` is
    /// written): the last moment to attach what must be there for its first request (the live overlay).
    private let beforeSwap: @Sendable (Serving) -> Void

    private let state = Mutex(State())
    /// Serialises mutations; held across a load (seconds for a large snapshot) on admin threads only.
    private let mutationLock = NSLock()

    private struct State {
        var record: ActiveRecord?
        var publishing: Set<String> = []
        /// Versions whose files this process has fully verified, with what the files looked like
        /// then: activating them again with identical files skips the O(bytes) checks.
        var verified: [String: [FileFingerprint]] = [:]
    }

    /// One entry of a version directory as `lstat` saw it.
    struct FileFingerprint: Equatable {
        var name: String
        var size: Int
        var modifiedNanos: Int64
        var inode: UInt64
    }

    /// What `.active` holds.
    struct ActiveRecord: Codable, Equatable {
        var version: String
        var activatedAtUnixMilliseconds: Int64
        var activatedBy: String
        /// Versions active before, oldest first: `Rollback` returns to the last one.
        var history: [String]
    }

    var stagingDirectory: String { root + "/" + SnapshotRoot.stagingName }
    var activeFile: String { root + "/" + SnapshotRoot.activeFileName }

    /// Opens (creating if needed) the snapshot root, removes whatever an interrupted upload left in
    /// `.staging/`, and reads the persisted active version. Activates nothing: see
    /// ``activateAtStartup()``.
    ///
    /// - Throws: ``SnapshotStoreError`` when the root cannot be created or cleaned, or `.active`
    ///   is unreadable.
    /// - Parameters:
    ///   - beforeSwap: called with each snapshot about to become active, before any request can read it.
    ///   - onActivation: called after every swap with the result and how it was triggered.
    public init(
        root: String, registry: SnapshotRegistry<Serving>, options: SnapshotStoreOptions = .init(),
        beforeSwap: @escaping @Sendable (Serving) -> Void = { _ in },
        onActivation: @escaping @Sendable (ActivationResult, String) -> Void = { _, _ in }
    ) throws(SnapshotStoreError) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
        self.registry = registry
        self.options = options
        self.onActivation = onActivation
        self.beforeSwap = beforeSwap
        try storage { () throws(MappedStorageError) in
            try FileSystemOps.makeDirectory(self.root)
            try FileSystemOps.removeTree(self.stagingDirectory)
            try FileSystemOps.makeDirectory(self.stagingDirectory)
            try FileSystemOps.removeTree(self.activeFile + ".tmp")
        }
        let record = try Self.readRecord(activeFile)
        state.withLock { $0.record = record }
    }

    // MARK: Versions

    /// Complete versions in the root, newest first (by the version directory's modification time,
    /// which is when its last entry — the manifest — arrived).
    public func completeVersions() -> [String] {
        let names = (try? FileSystemOps.list(root)) ?? []
        var found: [(name: String, modified: Int64)] = []
        for name in names where SnapshotRoot.isValidVersionName(name) {
            guard let entry = FileSystemOps.entry(root + "/" + name), entry.isDirectory,
                FileSystemOps.entry(root + "/" + name + "/" + SnapshotFiles.manifest)?.isRegularFile == true
            else { continue }
            found.append((name, entry.modifiedNanos))
        }
        return found.sorted { $0.modified != $1.modified ? $0.modified > $1.modified : $0.name > $1.name }.map(\.name)
    }

    // MARK: Activation

    /// At startup: activates the persisted active version, else (it is gone or fails validation)
    /// the versions active before it, else the newest complete version. Returns the activated
    /// version, or nil when the root holds nothing that can serve. Failures are reported to `log`.
    public func activateAtStartup(log: (String) -> Void = { _ in }) -> ActivationResult? {
        let record = state.withLock { $0.record }
        var candidates: [String] = []
        if let record { candidates += [record.version] + record.history.reversed() }
        candidates += completeVersions()
        var tried: Set<String> = []
        for version in candidates where tried.insert(version).inserted {
            do throws(SnapshotStoreError) {
                return try activate(version, by: "startup")
            } catch {
                log("cannot activate \(version) at startup: \(error.message)")
            }
        }
        return nil
    }

    /// Makes `version` active: open + verify + derive + pre-fault, persist, swap.
    ///
    /// Blocks for the load (O(snapshot bytes)): call it from an admin thread, never an event loop.
    /// - Parameter how: recorded in status ("activate", "publish", "watch", "startup").
    /// - Throws: `notFound` (no such complete version), `failedPrecondition` (it fails validation
    ///   or its dimension differs from the active one); the active snapshot is unchanged then.
    public func activate(_ version: String, by how: String = "activate") throws(SnapshotStoreError)
        -> ActivationResult
    {
        mutationLock.lock()
        defer { mutationLock.unlock() }
        return try activateLocked(version, by: how, rollback: false)
    }

    /// Returns to the version that was active before the current one.
    /// - Throws: `failedPrecondition` when there is none (or it no longer validates).
    public func rollback() throws(SnapshotStoreError) -> ActivationResult {
        mutationLock.lock()
        defer { mutationLock.unlock() }
        guard let target = state.withLock({ $0.record?.history.last }) else {
            throw SnapshotStoreError(.failedPrecondition, "no previous version to roll back to")
        }
        return try activateLocked(target, by: "rollback", rollback: true)
    }

    /// ``swapLocked(_:by:rollback:)``, counted and timed through swift-metrics (docs/OPERATIONS.md,
    /// "Metrics"): every activation, whoever asked for it, passes here.
    private func activateLocked(_ version: String, by how: String, rollback: Bool) throws(SnapshotStoreError)
        -> ActivationResult
    {
        let started = ContinuousClock.now
        do {
            let result = try swapLocked(version, by: how, rollback: rollback)
            let elapsed = (ContinuousClock.now - started).components
            CoreMetrics.Timer(label: "rankd_snapshot_activation_seconds").recordNanoseconds(
                elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
            Counter(label: "rankd_snapshot_activations_total", dimensions: [("result", "ok")]).increment()
            return result
        } catch {
            Counter(label: "rankd_snapshot_activations_total", dimensions: [("result", "failed")]).increment()
            throw error
        }
    }

    private func swapLocked(_ version: String, by how: String, rollback: Bool) throws(SnapshotStoreError)
        -> ActivationResult
    {
        guard SnapshotRoot.isValidVersionName(version) else {
            throw SnapshotStoreError(.invalidArgument, "version: \"\(version)\" is not a valid version name")
        }
        let directory = root + "/" + version
        guard FileSystemOps.entry(directory + "/" + SnapshotFiles.manifest)?.isRegularFile == true else {
            throw SnapshotStoreError(.notFound, "snapshot version \(version) is not in the snapshot root")
        }
        let started = ContinuousClock.now
        // Files verified earlier by this process and unchanged since (same inode, size, mtime to
        // the nanosecond) need not be checksummed again: rollback and re-activation then cost an
        // open, the graph check and the pre-fault. A restart, or any write to a file, verifies fully.
        let fingerprint = Self.fingerprint(directory)
        let alreadyVerified = fingerprint != nil && state.withLock { $0.verified[version] } == fingerprint
        let serving: Serving
        do {
            serving = try Serving.load(
                directory: directory, verifyChecksums: !alreadyVerified, verifyStructure: !alreadyVerified,
                prefault: true)
        } catch {
            throw SnapshotStoreError(.failedPrecondition, "snapshot \(version) cannot serve: \(error)")
        }
        guard serving.version == version else {
            throw SnapshotStoreError(
                .failedPrecondition,
                "snapshot directory \(version) holds manifest snapshotVersion \(serving.version): they must match")
        }
        if !alreadyVerified, let fingerprint {
            state.withLock { $0.verified[version] = fingerprint }
        }
        try checkCompatible(dimension: serving.snapshot.dimension, version: version)
        let loaded = ContinuousClock.now - started

        let current = registry.current()
        let previousVersion = current?.version ?? ""
        var record =
            state.withLock { $0.record }
            ?? ActiveRecord(version: version, activatedAtUnixMilliseconds: 0, activatedBy: how, history: [])
        if rollback {
            record.history.removeLast()
        } else if let current, current.version != version {
            record.history.removeAll { $0 == current.version || $0 == version }
            record.history.append(current.version)
            if record.history.count > 32 { record.history.removeFirst(record.history.count - 32) }
        }
        record.history.removeAll { $0 == version }
        record.version = version
        record.activatedBy = how
        record.activatedAtUnixMilliseconds = Int64(Date().timeIntervalSince1970 * 1000)
        // Persist first: if this fails nothing has changed; if we crash after it, the restart
        // comes back on the version we were about to serve.
        try writeRecord(record)
        state.withLock { $0.record = record }
        beforeSwap(serving)
        if let replaced = registry.activate(serving) {
            SnapshotRegistry<Serving>.releaseWhenIdle(replaced)
        }
        applyRetentionLocked()
        var result = ActivationResult(
            activeVersion: version, previousVersion: previousVersion,
            loadMilliseconds: Double(loaded.components.attoseconds) / 1e15 + Double(loaded.components.seconds) * 1000)
        result.fullyVerified = !alreadyVerified
        onActivation(result, how)
        return result
    }

    /// Refuses a snapshot whose embedding dimension differs from the active one, unless the
    /// store allows dimension changes (clients that cache query vectors would break silently).
    func checkCompatible(dimension: Int, version: String) throws(SnapshotStoreError) {
        guard !options.allowDimensionChange, let active = registry.current() else { return }
        guard active.snapshot.dimension == dimension else {
            throw SnapshotStoreError(
                .failedPrecondition,
                "snapshot \(version) has dimension \(dimension) but the active snapshot \(active.version) has "
                    + "\(active.snapshot.dimension) (start rankd with --allow-dimension-change to permit this)")
        }
    }

    // MARK: Retention

    /// Deletes complete versions beyond the newest `options.retain`, never the active version, the
    /// rollback target, or one being published. Incomplete directories (no manifest yet: a job may
    /// still be writing them) are left alone.
    public func applyRetention() {
        mutationLock.lock()
        defer { mutationLock.unlock() }
        applyRetentionLocked()
    }

    private func applyRetentionLocked() {
        let (record, publishing) = state.withLock { ($0.record, $0.publishing) }
        var keep = Set(completeVersions().prefix(max(options.retain, 0)))
        if let record {
            keep.insert(record.version)
            if let target = record.history.last { keep.insert(target) }
        }
        if let active = registry.current() { keep.insert(active.version) }
        keep.formUnion(publishing)
        for version in completeVersions() where !keep.contains(version) {
            // Requests may still map its files: unlinking is safe, the pages live until munmap.
            try? FileSystemOps.removeTree(root + "/" + version)
            _ = state.withLock { $0.verified.removeValue(forKey: version) }
        }
        let remaining = Set(completeVersions())
        guard var updated = record else { return }
        updated.history.removeAll { !remaining.contains($0) }
        if updated != record, (try? writeRecord(updated)) != nil {
            state.withLock { $0.record = updated }
        }
    }

    // MARK: Status

    /// The active version and the retained ones. Reads each retained manifest (small files).
    public func status() -> SnapshotStatus {
        var status = SnapshotStatus()
        let record = state.withLock { $0.record }
        if let active = registry.current() {
            status.activeVersion = active.version
            status.items = active.snapshot.itemIds.count
            status.users = active.snapshot.userIds.count
            status.dimension = active.snapshot.dimension
            status.bytesMapped = active.mappedBytes
        }
        if let record, record.version == status.activeVersion {
            status.activatedAtUnixMilliseconds = record.activatedAtUnixMilliseconds
            status.activatedBy = record.activatedBy
            status.rollbackVersion = record.history.last ?? ""
        }
        for version in completeVersions() {
            var info = RetainedVersionInfo(version: version)
            if let manifest = try? Snapshot.readManifest(directory: root + "/" + version) {
                info.bytes = manifest.files.reduce(0) { $0 + $1.size }
                info.items = manifest.counts.items
                info.users = manifest.counts.users
                info.dimension = manifest.dimension
                info.createdAt = manifest.createdAt
            }
            status.retained.append(info)
        }
        let mapped = Serving.mappedSnapshots
        status.mappedSnapshots = mapped.count
        status.bytesMappedTotal = mapped.bytes
        status.retain = options.retain
        return status
    }

    // MARK: Publishing support (see SnapshotStore+Publish.swift)

    /// Claims `version` for one upload; false if another upload of it is in progress.
    func claimPublish(_ version: String) -> Bool {
        state.withLock { $0.publishing.insert(version).inserted }
    }

    func releasePublish(_ version: String) {
        _ = state.withLock { $0.publishing.remove(version) }
    }

    /// Runs `body` under the mutation lock (publish commit: the final rename and retention).
    func withMutationLock<R>(_ body: () throws(SnapshotStoreError) -> R) throws(SnapshotStoreError) -> R {
        mutationLock.lock()
        defer { mutationLock.unlock() }
        return try body()
    }

    func applyRetentionWhileLocked() { applyRetentionLocked() }

    /// Records that the files now in `version`'s directory passed full verification (publish).
    func markVerified(_ version: String) {
        guard let fingerprint = Self.fingerprint(root + "/" + version) else { return }
        state.withLock { $0.verified[version] = fingerprint }
    }

    /// Every entry of `directory`, sorted by name, or nil if it cannot be listed.
    static func fingerprint(_ directory: String) -> [FileFingerprint]? {
        guard let names = try? FileSystemOps.list(directory) else { return nil }
        var prints: [FileFingerprint] = []
        for name in names {
            guard let entry = FileSystemOps.entry(directory + "/" + name) else { return nil }
            prints.append(
                FileFingerprint(name: name, size: entry.size, modifiedNanos: entry.modifiedNanos, inode: entry.inode))
        }
        return prints
    }

    // MARK: The active-version file

    private func writeRecord(_ record: ActiveRecord) throws(SnapshotStoreError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(record) else {
            throw SnapshotStoreError(.internalError, "cannot encode the active-version record")
        }
        try storage { () throws(MappedStorageError) in try FileSystemOps.writeAtomically(activeFile, bytes: Array(data))
        }
    }

    private static func readRecord(_ path: String) throws(SnapshotStoreError) -> ActiveRecord? {
        guard FileSystemOps.entry(path) != nil else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SnapshotStoreError(.internalError, "\(path): cannot read the active-version file")
        }
        do {
            return try JSONDecoder().decode(ActiveRecord.self, from: data)
        } catch {
            // Written by atomic rename, so a torn file means someone edited it: say so, start anyway
            // with the newest complete version rather than refusing to serve.
            return nil
        }
    }
}

/// Names in the snapshot root shared by every store (see ``SnapshotStore`` for the layout).
public enum SnapshotRoot {
    /// Uploads in progress, one directory each; emptied at every start.
    static let stagingName = ".staging"
    /// The active version (JSON), replaced by atomic rename.
    static let activeFileName = ".active"

    /// Whether `name` may be a version: 1–128 characters from `A-Z a-z 0-9 . _ -`, not starting with
    /// a dot (dot names are the store's own files).
    public static func isValidVersionName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 128, !name.hasPrefix(".") else { return false }
        return name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D
        }
    }
}

/// Store settings.
public struct SnapshotStoreOptions: Sendable {
    /// Complete versions kept (newest first) besides the active one and the rollback target.
    public var retain = 3
    /// Largest snapshot a publish may upload (sum of file sizes and manifest).
    public var maxPublishBytes = 64 << 30
    /// Free space that must remain on the root's file system after a publish.
    public var reserveBytes = 64 << 20
    /// Allow activating a snapshot whose dimension differs from the active one.
    public var allowDimensionChange = false

    public init() {}
}

/// A refused store operation: a code that maps onto the gRPC error model and a message that names
/// the version, file or field.
public struct SnapshotStoreError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case invalidArgument, notFound, alreadyExists, failedPrecondition, resourceExhausted, aborted, internalError
    }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

/// Runs a storage operation, turning its error into an `internalError` store error.
func storage<R>(_ body: () throws(MappedStorageError) -> R) throws(SnapshotStoreError) -> R {
    do {
        return try body()
    } catch {
        throw SnapshotStoreError(.internalError, error.description)
    }
}

import Foundation
import MappedStorage
public import RankingModel
import Snapshot

extension SnapshotStore {
    /// Starts an upload: checks the header (version name, manifest, file list, size bound, free
    /// disk space, dimension, an existing version of that name) before anything is written.
    ///
    /// - Throws: `invalidArgument` (bad version name, manifest or file list), `alreadyExists` (the
    ///   version exists with a different manifest), `aborted` (another upload of the version is in
    ///   progress), `failedPrecondition` (dimension differs from the active snapshot's),
    ///   `resourceExhausted` (over the size bound or not enough disk).
    public func beginPublish(_ header: PublishHeader) throws(SnapshotStoreError) -> PublishSession<Serving> {
        let version = header.version
        guard SnapshotRoot.isValidVersionName(version) else {
            throw SnapshotStoreError(
                .invalidArgument,
                "header.version: \"\(version)\" must be 1-128 characters of A-Z a-z 0-9 . _ - not starting with '.'")
        }
        let manifest: SnapshotManifest
        do {
            manifest = try SnapshotManifest.parse(Data(header.manifest), file: "header.manifest")
        } catch {
            throw SnapshotStoreError(.invalidArgument, error.description)
        }
        guard manifest.snapshotVersion == version else {
            throw SnapshotStoreError(
                .invalidArgument,
                "header.version \"\(version)\" differs from the manifest's snapshotVersion \"\(manifest.snapshotVersion)\""
            )
        }
        try Self.checkFileList(header.files, manifest: manifest)

        let existing = root + "/" + version
        if FileSystemOps.entry(existing) != nil {
            let stored = FileManager.default.contents(atPath: existing + "/" + SnapshotFiles.manifest)
            guard let stored, Array(stored) == header.manifest else {
                throw SnapshotStoreError(
                    .alreadyExists,
                    "version \(version) already exists in the snapshot root with different content; "
                        + "publish under a new version name")
            }
            return PublishSession(store: self, header: header, staging: nil)
        }
        try checkCompatible(dimension: manifest.dimension, version: version)
        let total = header.files.reduce(header.manifest.count) { $0 + $1.size }
        guard total <= options.maxPublishBytes else {
            throw SnapshotStoreError(
                .resourceExhausted,
                "snapshot \(version) is \(total) bytes, over the publish limit of \(options.maxPublishBytes) bytes")
        }
        let available = try storage { () throws(MappedStorageError) in try FileSystemOps.availableBytes(root) }
        guard total <= available - options.reserveBytes else {
            throw SnapshotStoreError(
                .resourceExhausted,
                "snapshot \(version) needs \(total) bytes but the snapshot root has \(available) available "
                    + "(\(options.reserveBytes) are kept free)")
        }
        guard claimPublish(version) else {
            throw SnapshotStoreError(.aborted, "another publish of version \(version) is in progress")
        }
        let staging = stagingDirectory + "/" + version + "." + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        do throws(SnapshotStoreError) {
            try storage { () throws(MappedStorageError) in
                try FileSystemOps.makeDirectory(staging)
                try FileSystemOps.makeDirectory(staging + "/" + version)
            }
        } catch {
            releasePublish(version)
            throw error
        }
        return PublishSession(store: self, header: header, staging: staging)
    }

    /// The header's file list must be exactly the manifest's (names, sizes, checksums) and every
    /// name a plain file name, so nothing is ever written outside the staging directory.
    static func checkFileList(_ files: [PublishFileInfo], manifest: SnapshotManifest) throws(SnapshotStoreError) {
        var declared: [String: PublishFileInfo] = [:]
        for (index, file) in files.enumerated() {
            guard SnapshotRoot.isValidVersionName(file.name), file.name != SnapshotFiles.manifest else {
                throw SnapshotStoreError(
                    .invalidArgument, "header.files[\(index)].name: \"\(file.name)\" is not a file name")
            }
            guard declared.updateValue(file, forKey: file.name) == nil else {
                throw SnapshotStoreError(.invalidArgument, "header.files: \(file.name) is listed twice")
            }
        }
        for entry in manifest.files {
            guard let file = declared.removeValue(forKey: entry.name) else {
                throw SnapshotStoreError(
                    .invalidArgument, "header.files lacks \(entry.name), which the manifest lists (a file is missing)")
            }
            guard file.size == entry.size, file.xxh64.lowercased() == entry.xxh64.lowercased() else {
                throw SnapshotStoreError(
                    .invalidArgument,
                    "header.files: \(entry.name) is \(file.size) bytes xxh64 \(file.xxh64), the manifest says "
                        + "\(entry.size) bytes xxh64 \(entry.xxh64)")
            }
        }
        if let extra = declared.keys.sorted().first {
            throw SnapshotStoreError(.invalidArgument, "header.files: \(extra) is not in the manifest")
        }
    }
}

/// One upload in progress: chunks are appended to files in a private staging directory;
/// ``commit()`` checks sizes, writes the manifest last, validates the whole snapshot with the same
/// code activation uses, then renames it into the root. Nothing is visible in the root before
/// that rename; ``abort()`` (or the next start) removes the staging directory.
///
/// Not thread-safe: drive one session from one thread (or serial queue) at a time.
public final class PublishSession<Serving: ServableSnapshot>: @unchecked Sendable {
    private let store: SnapshotStore<Serving>
    public let header: PublishHeader
    /// `nil` when an identical version is already in the root: chunks are ignored.
    private let staging: String?
    private var writers: [String: FileWriter] = [:]
    private var written: [String: Int] = [:]
    private let sizes: [String: Int]
    private var finished = false

    init(store: SnapshotStore<Serving>, header: PublishHeader, staging: String?) {
        self.store = store
        self.header = header
        self.staging = staging
        sizes = Dictionary(header.files.map { ($0.name, $0.size) }, uniquingKeysWith: { first, _ in first })
    }

    deinit { if !finished { abort() } }

    private var directory: String? { staging.map { $0 + "/" + header.version } }

    /// Bytes received so far.
    public var bytesReceived: Int { written.values.reduce(0, +) }

    /// Appends one chunk.
    /// - Throws: `invalidArgument` for a chunk of an undeclared file, out of order, or past the
    ///   declared size; `internalError` when the disk write fails.
    public func write(_ chunk: PublishChunk) throws(SnapshotStoreError) {
        guard let directory else { return }
        guard let size = sizes[chunk.path] else {
            throw SnapshotStoreError(.invalidArgument, "chunk.path: \(chunk.path) is not one of the header's files")
        }
        let done = written[chunk.path, default: 0]
        guard chunk.offset == done else {
            throw SnapshotStoreError(
                .invalidArgument,
                "chunk for \(chunk.path) at offset \(chunk.offset), expected \(done) (chunks of a file arrive in order)"
            )
        }
        guard chunk.data.count <= size - done else {
            throw SnapshotStoreError(
                .invalidArgument,
                "chunk for \(chunk.path) ends at \(done + chunk.data.count), past its declared size \(size)")
        }
        let writer: FileWriter
        if let open = writers[chunk.path] {
            writer = open
        } else {
            writer = try storage { () throws(MappedStorageError) in try FileWriter(path: directory + "/" + chunk.path) }
            writers[chunk.path] = writer
        }
        try storage { () throws(MappedStorageError) in try writer.write(chunk.data) }
        written[chunk.path] = done + chunk.data.count
    }

    /// Completes the upload: every file complete, manifest written last, full validation, rename
    /// into the root, retention, and activation if the header asked for it.
    /// - Throws: `invalidArgument` (a truncated or missing file, or a snapshot that fails
    ///   validation: checksum, structure, graph), `alreadyExists` (the version appeared meanwhile
    ///   with other content), or what activation throws.
    public func commit() throws(SnapshotStoreError) -> PublishResult {
        defer { abort() }
        var result = PublishResult(version: header.version)
        guard let directory, let staging else {
            result.alreadyPresent = true
            if header.activate {
                result.activeVersion = try store.activate(header.version, by: "publish").activeVersion
            }
            return result
        }
        for file in header.files {
            let done = written[file.name, default: 0]
            guard done == file.size else {
                throw SnapshotStoreError(
                    .invalidArgument,
                    "truncated upload: \(file.name) has \(done) of its \(file.size) bytes")
            }
        }
        try storage { () throws(MappedStorageError) in
            for file in header.files {
                // A zero-byte file gets no chunk: create it empty.
                let writer: FileWriter
                if let open = writers.removeValue(forKey: file.name) {
                    writer = open
                } else {
                    writer = try FileWriter(path: directory + "/" + file.name)
                }
                try writer.finish()
            }
            let manifest = try FileWriter(path: directory + "/" + SnapshotFiles.manifest)
            try manifest.write(header.manifest)
            try manifest.finish()
            try FileSystemOps.syncDirectory(directory)
        }
        // The same checks activation runs (checksums, structure, graph, ranking config), without
        // pre-faulting: a published version need not be resident until it is activated.
        let started = ContinuousClock.now
        do {
            _ = try Serving.load(directory: directory, verifyChecksums: true, verifyStructure: true, prefault: false)
        } catch {
            throw SnapshotStoreError(
                .invalidArgument, "snapshot \(header.version) failed validation: \(error)")
        }
        let elapsed = ContinuousClock.now - started
        result.validateMilliseconds =
            Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        result.bytesWritten = bytesReceived + header.manifest.count
        let target = store.root + "/" + header.version
        try store.withMutationLock { () throws(SnapshotStoreError) in
            if FileSystemOps.entry(target) != nil {
                let stored = FileManager.default.contents(atPath: target + "/" + SnapshotFiles.manifest)
                guard let stored, Array(stored) == header.manifest else {
                    throw SnapshotStoreError(
                        .alreadyExists, "version \(header.version) appeared in the snapshot root with different content"
                    )
                }
                result.alreadyPresent = true
                result.bytesWritten = 0
                return
            }
            try storage { () throws(MappedStorageError) in
                try FileSystemOps.rename(directory, to: target)
                try FileSystemOps.syncDirectory(store.root)
                try FileSystemOps.removeTree(staging)
            }
            // Renaming the directory keeps every file's inode and mtime: what was verified above
            // is what is in the root now.
            store.markVerified(header.version)
            store.applyRetentionWhileLocked()
        }
        if header.activate {
            result.activeVersion = try store.activate(header.version, by: "publish").activeVersion
        }
        return result
    }

    /// Discards the upload: closes its files and removes its staging directory. Idempotent.
    public func abort() {
        guard !finished else { return }
        finished = true
        writers.removeAll()
        // Only an upload that claimed the version (it has a staging directory) releases the claim.
        if let staging {
            try? FileSystemOps.removeTree(staging)
            store.releasePublish(header.version)
        }
    }
}

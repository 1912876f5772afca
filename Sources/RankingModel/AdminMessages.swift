/// `ranking.v1.SnapshotAdmin` messages as Swift values (see `Protos/ranking/v1/admin.proto`).
/// Shared by the codec (RankingAPI), the snapshot store (RankingEngine) and rankctl.

/// One binary file of a snapshot being published, as the publisher declares it.
public struct PublishFileInfo: Sendable, Equatable {
    /// File name inside the snapshot directory.
    public var name: String
    /// Exact size in bytes.
    public var size: Int
    /// xxHash64 (seed 0), 16 lowercase hex digits.
    public var xxh64: String

    public init(name: String, size: Int, xxh64: String) {
        self.name = name
        self.size = size
        self.xxh64 = xxh64
    }
}

/// The first message of a `Publish` call.
public struct PublishHeader: Sendable, Equatable {
    /// The version name: the directory name in the snapshot root and the manifest's `snapshotVersion`.
    public var version: String
    /// The exact bytes of `manifest.json`.
    public var manifest: [UInt8]
    /// Every binary file the chunks will carry.
    public var files: [PublishFileInfo]
    /// Activate the version once published.
    public var activate: Bool

    public init(version: String, manifest: [UInt8], files: [PublishFileInfo], activate: Bool = false) {
        self.version = version
        self.manifest = manifest
        self.files = files
        self.activate = activate
    }
}

/// A piece of one file of a snapshot being published.
public struct PublishChunk: Sendable, Equatable {
    /// File name (one of the header's files).
    public var path: String
    /// Byte offset of `data` in the file; chunks of a file arrive in order.
    public var offset: Int
    public var data: [UInt8]

    public init(path: String, offset: Int, data: [UInt8]) {
        self.path = path
        self.offset = offset
        self.data = data
    }
}

/// One message of a `Publish` stream.
public enum PublishMessage: Sendable, Equatable {
    case header(PublishHeader)
    case chunk(PublishChunk)
}

/// The outcome of a `Publish`.
public struct PublishResult: Sendable, Equatable {
    public var version: String
    /// An identical version was already in the root; nothing was written.
    public var alreadyPresent = false
    public var bytesWritten = 0
    /// Set when activation was requested and succeeded.
    public var activeVersion = ""
    /// Time spent validating the staged snapshot.
    public var validateMilliseconds = 0.0

    public init(version: String) { self.version = version }
}

/// The outcome of an `Activate` or a `Rollback`.
public struct ActivationResult: Sendable, Equatable {
    public var activeVersion: String
    /// The version active before (empty if none).
    public var previousVersion: String
    /// Load time: open, verify, derive and pre-fault, up to the swap.
    public var loadMilliseconds: Double
    /// False when the checksums and deep structure checks were skipped because this process had
    /// already verified these exact files (same inode, size and modification time).
    public var fullyVerified = true

    public init(activeVersion: String, previousVersion: String, loadMilliseconds: Double) {
        self.activeVersion = activeVersion
        self.previousVersion = previousVersion
        self.loadMilliseconds = loadMilliseconds
    }
}

/// A complete snapshot version in the snapshot root.
public struct RetainedVersionInfo: Sendable, Equatable {
    public var version: String
    public var bytes: Int = 0
    public var items: Int = 0
    public var users: Int = 0
    public var dimension: Int = 0
    /// The manifest's `createdAt`.
    public var createdAt: String = ""

    public init(version: String) { self.version = version }
}

/// The answer to `Status`.
public struct SnapshotStatus: Sendable, Equatable {
    public var activeVersion = ""
    /// Unix milliseconds, 0 when nothing is active.
    public var activatedAtUnixMilliseconds: Int64 = 0
    /// "startup", "activate", "rollback", "publish" or "watch".
    public var activatedBy = ""
    /// Newest first.
    public var retained: [RetainedVersionInfo] = []
    public var rollbackVersion = ""
    public var items = 0
    public var users = 0
    public var dimension = 0
    /// Bytes of the active snapshot's files.
    public var bytesMapped = 0
    /// Snapshots still mapped (active plus any still held by in-flight requests).
    public var mappedSnapshots = 0
    public var bytesMappedTotal = 0
    /// Versions kept beyond the active and rollback target.
    public var retain = 0
    /// The live overlay (item updates, deleted users) on top of the active snapshot.
    public var overlay = OverlayStatus()

    public init() {}
}

import Foundation
public import Snapshot
public import VectorIndex

/// A snapshot ready to serve: the mapped files plus what is derived from them once, at
/// activation (the decoded ranking config, the HNSW index over the item vectors).
///
/// Immutable and `Sendable`; requests hold a reference for their whole duration, so the mapping
/// outlives every request that started on it.
public final class ServingSnapshot: Sendable {
    public let snapshot: Snapshot
    /// `nil` when the snapshot has no graph: retrieval is then an exact scan.
    public let index: HNSWIndex?
    public let config: RankingConfig

    /// The snapshot's version name.
    public var version: String { snapshot.manifest.snapshotVersion }

    /// Derives the serving state of an opened snapshot.
    ///
    /// - Throws: ``ServingSnapshotError`` when the ranking config or the graph is unusable.
    public init(snapshot: Snapshot) throws(ServingSnapshotError) {
        self.snapshot = snapshot
        do {
            config = try RankingConfig.decode(snapshot.manifest.rankingConfigJSON)
        } catch {
            throw ServingSnapshotError("snapshot \(snapshot.manifest.snapshotVersion): \(error.description)")
        }
        do {
            if let graph = try snapshot.loadGraph() {
                index = try HNSWIndex(vectors: snapshot.itemVectors.matrix, graph: graph)
            } else {
                index = nil
            }
        } catch {
            throw ServingSnapshotError("snapshot \(snapshot.manifest.snapshotVersion): graph: \(error)")
        }
    }

    /// Opens, fully verifies (checksums and structure), derives and pre-faults the snapshot in
    /// `directory`: everything that must happen before it may serve, off the request path.
    public static func load(directory: String, verifyChecksums: Bool = true) throws(ServingSnapshotError)
        -> ServingSnapshot
    {
        let snapshot: Snapshot
        do {
            snapshot = try Snapshot.open(directory: directory)
            if verifyChecksums { try snapshot.verifyChecksums() }
            try snapshot.verifyStructure()
        } catch {
            throw ServingSnapshotError("\(error)")
        }
        let serving = try ServingSnapshot(snapshot: snapshot)
        _ = snapshot.prefault()
        return serving
    }
}

/// A snapshot that cannot serve; the message names the snapshot and the problem.
public struct ServingSnapshotError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

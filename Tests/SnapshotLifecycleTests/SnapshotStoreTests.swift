import Foundation
import RankingModel
import Snapshot
import TestSupport
import Testing

@testable import SnapshotLifecycle

extension SnapshotRootFixture {
    func store(retain: Int = 3, registry: SnapshotRegistry<OpenedSnapshot> = SnapshotRegistry<OpenedSnapshot>()) throws
        -> SnapshotStore<OpenedSnapshot>
    {
        var options = SnapshotStoreOptions()
        options.retain = retain
        return try SnapshotStore(root: root, registry: registry, options: options)
    }

    /// Publishes `built` in 1 KiB chunks; `alter` may change the header and the chunks sent.
    @discardableResult
    func publish(
        _ built: String, to store: SnapshotStore<OpenedSnapshot>, activate: Bool = false,
        header alterHeader: (inout PublishHeader) -> Void = { _ in },
        chunks alterChunks: (inout [PublishChunk]) -> Void = { _ in }
    ) throws -> PublishResult {
        var header = try header(built, activate: activate)
        alterHeader(&header)
        var chunks = chunks(built, header: header)
        alterChunks(&chunks)
        let session = try store.beginPublish(header)
        for chunk in chunks { try session.write(chunk) }
        return try session.commit()
    }
}

/// Expects `body` to throw a store error with `code` whose message contains `fragment`.
func expectStoreError(
    _ code: SnapshotStoreError.Code, containing fragment: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected \(code) error containing '\(fragment)'", sourceLocation: sourceLocation)
    } catch let error as SnapshotStoreError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("SnapshotStore")
struct SnapshotStoreTests {
    @Test func cleansStagingLeftoversAtOpen() throws {
        let fixture = try SnapshotRootFixture()
        let leftover = fixture.root + "/.staging/v9.dead/v9"
        try FileManager.default.createDirectory(atPath: leftover, withIntermediateDirectories: true)
        try Data("partial".utf8).write(to: URL(fileURLWithPath: leftover + "/item_vectors.vec"))
        let store = try fixture.store()
        #expect(try fixture.stagingEntries().isEmpty)
        #expect(store.completeVersions().isEmpty)
    }

    @Test func publishActivateAndRestartComesBackOnPersistedVersion() throws {
        let fixture = try SnapshotRootFixture()
        let registry = SnapshotRegistry<OpenedSnapshot>()
        let store = try fixture.store(registry: registry)
        let first = try fixture.publish(try fixture.build("v1", seed: 1), to: store, activate: true)
        #expect(first.activeVersion == "v1" && !first.alreadyPresent && first.bytesWritten > 0)
        try fixture.publish(try fixture.build("v2", seed: 2), to: store)
        _ = try store.activate("v2")
        #expect(registry.current()?.version == "v2")
        #expect(try fixture.stagingEntries().isEmpty)
        #expect(!fixture.exists(".active.tmp"))

        // A restart (new registry, new store on the same root) serves the persisted version.
        let restarted = SnapshotRegistry<OpenedSnapshot>()
        let again = try fixture.store(registry: restarted)
        #expect(again.activateAtStartup()?.activeVersion == "v2")
        #expect(again.status().rollbackVersion == "v1")
        let rolled = try again.rollback()
        #expect(rolled.activeVersion == "v1" && rolled.previousVersion == "v2")
        #expect(restarted.current()?.version == "v1")
    }

    @Test func firstStartServesNewestCompleteVersionAndEmptyRootServesNothing() throws {
        let fixture = try SnapshotRootFixture()
        let empty = try fixture.store()
        #expect(empty.activateAtStartup() == nil)
        try fixture.publish(try fixture.build("old", seed: 1), to: empty)
        Thread.sleep(forTimeInterval: 0.02)
        try fixture.publish(try fixture.build("new", seed: 2), to: empty)
        // An incomplete directory (no manifest) is never a candidate.
        try FileManager.default.createDirectory(atPath: fixture.root + "/partial", withIntermediateDirectories: true)
        let registry = SnapshotRegistry<OpenedSnapshot>()
        let store = try fixture.store(registry: registry)
        #expect(store.completeVersions() == ["new", "old"])
        #expect(store.activateAtStartup()?.activeVersion == "new")
    }

    @Test func retentionKeepsNewestActiveAndRollbackTarget() throws {
        let fixture = try SnapshotRootFixture()
        let store = try fixture.store(retain: 1)
        try fixture.publish(try fixture.build("a", seed: 1), to: store, activate: true)
        Thread.sleep(forTimeInterval: 0.02)
        try fixture.publish(try fixture.build("b", seed: 2), to: store, activate: true)
        Thread.sleep(forTimeInterval: 0.02)
        try fixture.publish(try fixture.build("c", seed: 3), to: store)
        Thread.sleep(forTimeInterval: 0.02)
        try fixture.publish(try fixture.build("d", seed: 4), to: store)
        // Newest (d), active (b) and rollback target (a) stay; c is neither.
        #expect(store.completeVersions().sorted() == ["a", "b", "d"])
        // The active version is never deleted even with retain 0.
        let strict = try fixture.store(retain: 0, registry: store.registry)
        strict.applyRetention()
        #expect(strict.completeVersions().sorted() == ["a", "b"])
    }

    @Test func identicalRepublishIsNoOpAndDifferentContentIsAlreadyExists() throws {
        let fixture = try SnapshotRootFixture()
        let store = try fixture.store()
        let built = try fixture.build("v1", seed: 1)
        try fixture.publish(built, to: store)
        let again = try fixture.publish(built, to: store)
        #expect(again.alreadyPresent && again.bytesWritten == 0)
        let other = try fixture.build("v1", seed: 5)
        expectStoreError(.alreadyExists, containing: "different content") { try fixture.publish(other, to: store) }
    }

    @Test func rejectsCorruptChunkWithChecksumErrorAndLeavesNothing() throws {
        let fixture = try SnapshotRootFixture()
        let registry = SnapshotRegistry<OpenedSnapshot>()
        let store = try fixture.store(registry: registry)
        try fixture.publish(try fixture.build("good", seed: 1), to: store, activate: true)
        let bad = try fixture.build("bad", seed: 2)
        expectStoreError(.invalidArgument, containing: "checksum") {
            try fixture.publish(
                bad, to: store,
                chunks: { chunks in
                    let index = chunks.firstIndex { $0.path == SnapshotFiles.itemVectors }!
                    chunks[index + 1].data[500] ^= 0x40
                })
        }
        #expect(!fixture.exists("bad"))
        #expect(try fixture.stagingEntries().isEmpty)
        #expect(registry.current()?.version == "good")
    }

    @Test func rejectsHeaderChecksumThatDisagreesWithManifest() throws {
        let fixture = try SnapshotRootFixture()
        let store = try fixture.store()
        let built = try fixture.build("v1", seed: 1)
        expectStoreError(.invalidArgument, containing: "the manifest says") {
            try fixture.publish(built, to: store) { header in header.files[0].xxh64 = "0000000000000000" }
        }
        #expect(try fixture.stagingEntries().isEmpty)
    }

    @Test func rejectsTruncatedUpload() throws {
        let fixture = try SnapshotRootFixture()
        let store = try fixture.store()
        let built = try fixture.build("v1", seed: 1)
        expectStoreError(.invalidArgument, containing: "truncated upload") {
            try fixture.publish(built, to: store, chunks: { chunks in chunks.removeLast() })
        }
        #expect(!fixture.exists("v1"))
        #expect(try fixture.stagingEntries().isEmpty)
    }

    @Test func rejectsMissingFileAndOutOfOrderChunks() throws {
        let fixture = try SnapshotRootFixture()
        let store = try fixture.store()
        let built = try fixture.build("v1", seed: 1)
        expectStoreError(.invalidArgument, containing: "a file is missing") {
            try fixture.publish(built, to: store) { header in
                header.files.removeAll { $0.name == SnapshotFiles.popularity }
            }
        }
        expectStoreError(.invalidArgument, containing: "arrive in order") {
            try fixture.publish(
                built, to: store,
                chunks: { chunks in
                    let first = chunks.firstIndex { $0.path == SnapshotFiles.itemVectors }!
                    chunks.swapAt(first, first + 1)
                })
        }
        expectStoreError(.invalidArgument, containing: "not a file name") {
            try fixture.publish(built, to: store) { header in header.files[0].name = "../escape" }
        }
        #expect(store.completeVersions().isEmpty)
        #expect(try fixture.stagingEntries().isEmpty)
    }

    @Test func rejectsDimensionDifferentFromActive() throws {
        let fixture = try SnapshotRootFixture()
        let registry = SnapshotRegistry<OpenedSnapshot>()
        let store = try fixture.store(registry: registry)
        try fixture.publish(try fixture.build("d8", seed: 1, dimension: 8), to: store, activate: true)
        expectStoreError(.failedPrecondition, containing: "dimension 16") {
            try fixture.publish(try fixture.build("d16", seed: 2, dimension: 16), to: store)
        }
        #expect(!fixture.exists("d16"))
        #expect(registry.current()?.version == "d8")
    }

    @Test func activateUnknownVersionIsNotFoundAndRollbackWithoutHistoryFails() throws {
        let fixture = try SnapshotRootFixture()
        let store = try fixture.store()
        expectStoreError(.notFound, containing: "not in the snapshot root") { _ = try store.activate("nope") }
        expectStoreError(.failedPrecondition, containing: "no previous version") { _ = try store.rollback() }
        expectStoreError(.invalidArgument, containing: "valid version name") { _ = try store.activate("../x") }
    }

    @Test func replacedSnapshotIsReleasedOnceIdle() throws {
        let fixture = try SnapshotRootFixture()
        let registry = SnapshotRegistry<OpenedSnapshot>()
        let store = try fixture.store(registry: registry)
        try fixture.publish(try fixture.build("a", seed: 1), to: store, activate: true)
        try fixture.publish(try fixture.build("b", seed: 2), to: store)
        weak let old = registry.current()
        for _ in 0..<4 {
            _ = try store.activate("b")
            _ = try store.activate("a")
            _ = try store.activate("b")
        }
        let deadline = Date().addingTimeInterval(5)
        while old != nil, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.005)
        }
        #expect(old == nil)
    }

    @Test func reactivationSkipsChecksumsOnlyForUnchangedVerifiedFiles() throws {
        let fixture = try SnapshotRootFixture()
        let registry = SnapshotRegistry<OpenedSnapshot>()
        let store = try fixture.store(registry: registry)
        try fixture.publish(try fixture.build("a", seed: 1), to: store, activate: true)
        try fixture.publish(try fixture.build("b", seed: 2), to: store)
        // Verified at publish, unchanged since: no second checksum pass.
        #expect(try store.activate("b").fullyVerified == false)

        // A file rewritten in place (new mtime) is verified again, and here refused.
        let path = fixture.root + "/a/" + SnapshotFiles.itemVectors
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: size - 8)
        let last = try #require(try handle.read(upToCount: 1))
        try handle.seek(toOffset: size - 8)
        try handle.write(contentsOf: Data([last[0] ^ 0x5A]))
        try handle.close()
        expectStoreError(.failedPrecondition, containing: "checksum") { _ = try store.activate("a") }
        #expect(registry.current()?.version == "b")

        // A new process trusts nothing it has not verified itself.
        let restarted = try fixture.store(registry: SnapshotRegistry<OpenedSnapshot>())
        #expect(try restarted.activate("b").fullyVerified == true)
        #expect(try restarted.activate("b").fullyVerified == false)
    }
}

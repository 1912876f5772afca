import ArgumentParser
import Foundation
import MappedStorage
import NIOCore
import RankingAPI
import Snapshot
import Synchronization

/// `rankctl publish DIR`: stream a snapshot directory to rankd's `Publish` (header, then 1 MiB
/// chunks with back-pressure), optionally activating it; with `--servers`, to every replica of a
/// fleet, all or nothing.
struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Upload a snapshot directory to a running rankd (its snapshot root), or to every replica.",
        discussion: """
            The version is the manifest's snapshotVersion. rankd stages the upload, checks sizes and checksums,
            validates the whole snapshot, then moves it into its snapshot root. Publishing an identical version
            again is a no-op; different content under an existing version is refused (ALREADY_EXISTS).

            With --servers a,b,c the upload goes to every replica in parallel. --activate then activates the
            version only once every upload succeeded, on all replicas at once; if any activation fails, the
            replicas that had already switched are rolled back (Rollback), so the fleet stays on one version.
            """)

    @Argument(help: "Snapshot directory (built by `rankctl build` or `rankctl synth`).")
    var directory: String

    @Flag(help: "Activate the version once it is published (with --servers: once it is published everywhere).")
    var activate = false

    @Option(help: "Chunk size in bytes (at most the server's --max-receive-message-size minus a little).")
    var chunkBytes = 1 << 20

    @Flag(help: "No progress output.")
    var quiet = false

    @OptionGroup var connection: AdminConnectionOptions

    func run() async throws {
        guard chunkBytes > 0 else { throw ValidationError("--chunk-bytes must be positive") }
        let plan = try PublishPlan(directory: directory)
        if let fleet = try connection.fleet() {
            try await publishToFleet(plan, fleet)
            return
        }
        let progress = UploadProgress(
            version: plan.version, replicas: [connection.server], total: plan.total, quiet: quiet)
        let outcome: PublishOutcome
        do {
            outcome = try await plan.upload(
                to: try connection.endpoint(), chunkBytes: chunkBytes, activate: activate, progress: progress, index: 0)
        } catch {
            progress.clear()
            throw error
        }
        progress.clear()
        print(outcome.summary)
        if !outcome.result.activeVersion.isEmpty { print("active: \(outcome.result.activeVersion)") }
    }

    /// Uploads to every replica in parallel; with `--activate`, activates all or none.
    private func publishToFleet(_ plan: PublishPlan, _ fleet: [AdminEndpoint]) async throws {
        let progress = UploadProgress(
            version: plan.version, replicas: fleet.map(\.address), total: plan.total, quiet: quiet)
        let chunkBytes = chunkBytes
        let uploads = await Fleet.onEach(fleet) { index, endpoint in
            // Never activate from the upload: activation waits until every replica holds the version.
            try await plan.upload(
                to: endpoint, chunkBytes: chunkBytes, activate: false, progress: progress, index: index)
        }
        progress.clear()
        let failed = Fleet.printEach(fleet, uploads, failing: "upload") { $0.summary }
        guard failed.isEmpty else {
            throw CommandFailure(
                "publish \(plan.version) failed on \(failed.count) of \(fleet.count) replicas (\(failed.joined(separator: ", ")))"
                    + (activate ? "; nothing was activated" : ""))
        }
        print("published \(plan.version) on all \(fleet.count) replicas")
        if activate {
            try await Fleet.activateAll(plan.version, on: fleet)
        }
    }
}

/// A snapshot directory ready to upload: its manifest read and every file's size checked against it.
struct PublishPlan: Sendable {
    let directory: String
    let version: String
    let manifestData: [UInt8]
    let files: [PublishFileInfo]
    /// Bytes of all the files the manifest lists.
    let total: Int

    init(directory: String) throws {
        let manifestPath = directory + "/" + SnapshotFiles.manifest
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw CommandFailure("cannot read \(manifestPath)")
        }
        let manifest: SnapshotManifest
        do {
            manifest = try SnapshotManifest.parse(data, file: manifestPath)
        } catch {
            throw CommandFailure("\(error)")
        }
        for entry in manifest.files {
            let size = FileSystemOps.entry(directory + "/" + entry.name)?.size
            guard size == entry.size else {
                throw CommandFailure(
                    "\(directory)/\(entry.name) is \(size.map(String.init) ?? "missing"), the manifest says \(entry.size) bytes"
                )
            }
        }
        self.directory = directory
        version = manifest.snapshotVersion
        manifestData = Array(data)
        files = manifest.files.map { PublishFileInfo(name: $0.name, size: $0.size, xxh64: $0.xxh64) }
        total = files.reduce(0) { $0 + $1.size }
    }

    /// Streams the snapshot to one rankd: the header, then every file in `chunkBytes` chunks.
    /// Stops sending as soon as the server ends the call (it refused the header or a chunk).
    /// - Throws: `CommandFailure` naming the server's status, or a local read error.
    func upload(
        to endpoint: AdminEndpoint, chunkBytes: Int, activate: Bool, progress: UploadProgress, index: Int
    ) async throws -> PublishOutcome {
        let header = PublishHeader(version: version, manifest: manifestData, files: files, activate: activate)
        let client = try await endpoint.connect()
        let call = client.startCall(
            path: "/ranking.v1.SnapshotAdmin/Publish", metadata: endpoint.metadata,
            timeout: .seconds(Int64(endpoint.timeout)))
        let started = ContinuousClock.now
        var sent = 0
        let ended = CallEnded()
        call.result.whenComplete { _ in ended.set() }
        // A send fails once the server has ended the call (it refused the header or a chunk):
        // stop sending and report the call's own status below.
        var refused = (try? await call.send(AdminCodec.encodePublishRequest(.header(header))).get()) == nil
        var buffer = [UInt8](repeating: 0, count: chunkBytes)
        fileLoop: for entry in files where !refused {
            let reader: FileReader
            do { reader = try FileReader(path: directory + "/" + entry.name) } catch {
                call.cancel()
                throw CommandFailure("\(error)")
            }
            var offset = 0
            while offset < entry.size {
                let count = try buffer.withUnsafeMutableBytes { raw in
                    try reader.read(
                        into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<min(chunkBytes, entry.size - offset)]))
                }
                guard count > 0 else {
                    call.cancel()
                    throw CommandFailure("\(entry.name): file ended at \(offset) of \(entry.size) bytes")
                }
                let chunk = PublishChunk(path: entry.name, offset: offset, data: Array(buffer[0..<count]))
                refused = (try? await call.send(AdminCodec.encodePublishRequest(.chunk(chunk))).get()) == nil
                offset += count
                sent += count
                // The server refused the upload (bad header, auth): stop sending at once.
                if refused || ended.isSet { break fileLoop }
                progress.update(index, sent: sent)
            }
        }
        if !refused { call.finishRequest() }
        let result = try await call.result.get()
        await client.close()
        let outcome: PublishResult
        do {
            outcome = try AdminCodec.decodePublishResponse(try result.unaryResponse())
        } catch {
            throw CommandFailure("publish \(version) failed: \(error)")
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return PublishOutcome(result: outcome, sent: sent, seconds: seconds)
    }
}

/// What one upload did.
struct PublishOutcome: Sendable {
    let result: PublishResult
    /// Bytes of file data sent.
    let sent: Int
    let seconds: Double

    /// One line for the operator.
    var summary: String {
        if result.alreadyPresent {
            return "\(result.version) is already published (identical); nothing written"
        }
        return "published \(result.version): \(SnapshotCommandSupport.byteCount(sent)) in "
            + String(
                format: "%.2f s (%.1f MB/s), validated in %.0f ms", seconds, Double(sent) / 1e6 / max(seconds, 1e-9),
                result.validateMilliseconds)
    }
}

/// The progress line of one or several parallel uploads, redrawn on stderr at most every 200 ms
/// and only when stderr is a terminal. Thread-safe: every upload task reports into it.
final class UploadProgress: Sendable {
    private struct State {
        var sent: [Int]
        var lastShown = ContinuousClock.now
        var shown = false
    }
    private let version: String
    private let replicas: [String]
    private let total: Int
    private let enabled: Bool
    private let state: Mutex<State>

    init(version: String, replicas: [String], total: Int, quiet: Bool) {
        self.version = version
        self.replicas = replicas
        self.total = total
        enabled = !quiet && isatty(STDERR_FILENO) == 1
        state = Mutex(State(sent: Array(repeating: 0, count: replicas.count)))
    }

    /// Records that upload `index` has sent `sent` bytes; redraws if it is time.
    func update(_ index: Int, sent: Int) {
        guard enabled else { return }
        let line: String? = state.withLock { state in
            state.sent[index] = sent
            guard ContinuousClock.now - state.lastShown > .milliseconds(200) else { return nil }
            state.lastShown = ContinuousClock.now
            state.shown = true
            return render(state.sent)
        }
        if let line { FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8)) }
    }

    /// Erases the line, if one was drawn.
    func clear() {
        guard enabled, state.withLock({ $0.shown }) else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }

    private func render(_ sent: [Int]) -> String {
        func percent(_ bytes: Int) -> Int { total > 0 ? 100 * bytes / total : 100 }
        if sent.count == 1 {
            return "publishing \(version): \(SnapshotCommandSupport.byteCount(sent[0])) of "
                + "\(SnapshotCommandSupport.byteCount(total)) (\(percent(sent[0]))%)"
        }
        let parts = zip(replicas, sent).map { "\($0) \(percent($1))%" }
        return "publishing \(version) (\(SnapshotCommandSupport.byteCount(total)) each): "
            + parts.joined(separator: " · ")
    }
}

/// Set once a call has ended, read by the sending loop.
private final class CallEnded: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
}

import ArgumentParser
import Foundation
import MappedStorage
import NIOCore
import RankingAPI
import Snapshot
import Synchronization

/// `rankctl publish DIR`: stream a snapshot directory to rankd's `Publish` (header, then 1 MiB
/// chunks with back-pressure), optionally activating it.
struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Upload a snapshot directory to a running rankd (its snapshot root).",
        discussion: """
            The version is the manifest's snapshotVersion. rankd stages the upload, checks sizes and checksums,
            validates the whole snapshot, then moves it into its snapshot root. Publishing an identical version
            again is a no-op; different content under an existing version is refused (ALREADY_EXISTS).
            """)

    @Argument(help: "Snapshot directory (built by `rankctl build` or `rankctl synth`).")
    var directory: String

    @Flag(help: "Activate the version once it is published.")
    var activate = false

    @Option(help: "Chunk size in bytes (at most the server's --max-receive-message-size minus a little).")
    var chunkBytes = 1 << 20

    @Flag(help: "No progress output.")
    var quiet = false

    @OptionGroup var connection: AdminConnectionOptions

    func run() async throws {
        guard chunkBytes > 0 else { throw ValidationError("--chunk-bytes must be positive") }
        let manifestPath = directory + "/" + SnapshotFiles.manifest
        guard let manifestData = FileManager.default.contents(atPath: manifestPath) else {
            throw CommandFailure("cannot read \(manifestPath)")
        }
        let manifest: SnapshotManifest
        do {
            manifest = try SnapshotManifest.parse(manifestData, file: manifestPath)
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
        let total = manifest.files.reduce(0) { $0 + $1.size }
        let header = PublishHeader(
            version: manifest.snapshotVersion, manifest: Array(manifestData),
            files: manifest.files.map { PublishFileInfo(name: $0.name, size: $0.size, xxh64: $0.xxh64) },
            activate: activate)
        let metadata = try connection.metadata()
        let client = try await connection.connect()
        let call = client.startCall(
            path: "/ranking.v1.SnapshotAdmin/Publish", metadata: metadata, timeout: .seconds(Int64(connection.timeout)))
        let started = ContinuousClock.now
        let progress = !quiet && isatty(STDERR_FILENO) == 1
        var sent = 0
        var lastShown = ContinuousClock.now
        let ended = CallEnded()
        call.result.whenComplete { _ in ended.set() }
        // A send fails once the server has ended the call (it refused the header or a chunk):
        // stop sending and report the call's own status below.
        var refused = (try? await call.send(AdminCodec.encodePublishRequest(.header(header))).get()) == nil
        var buffer = [UInt8](repeating: 0, count: chunkBytes)
        fileLoop: for entry in manifest.files where !refused {
            let reader: FileReader
            do { reader = try FileReader(path: directory + "/" + entry.name) } catch {
                throw CommandFailure("\(error)")
            }
            var offset = 0
            while offset < entry.size {
                let count = try buffer.withUnsafeMutableBytes { raw in
                    try reader.read(
                        into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<min(chunkBytes, entry.size - offset)]))
                }
                guard count > 0 else {
                    throw CommandFailure("\(entry.name): file ended at \(offset) of \(entry.size) bytes")
                }
                let chunk = PublishChunk(path: entry.name, offset: offset, data: Array(buffer[0..<count]))
                refused = (try? await call.send(AdminCodec.encodePublishRequest(.chunk(chunk))).get()) == nil
                offset += count
                sent += count
                // The server refused the upload (bad header, auth): stop sending at once.
                if refused || ended.isSet { break fileLoop }
                if progress, ContinuousClock.now - lastShown > .milliseconds(200) {
                    lastShown = ContinuousClock.now
                    FileHandle.standardError.write(
                        Data(
                            "\r\u{1B}[Kpublishing \(header.version): \(SnapshotCommandSupport.byteCount(sent)) of \(SnapshotCommandSupport.byteCount(total)) (\(total > 0 ? 100 * sent / total : 100)%)"
                                .utf8))
                }
            }
        }
        if !refused { call.finishRequest() }
        let result = try await call.result.get()
        if progress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        await client.close()
        let outcome: PublishResult
        do {
            outcome = try AdminCodec.decodePublishResponse(try result.unaryResponse())
        } catch {
            throw CommandFailure("publish \(header.version) failed: \(error)")
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if outcome.alreadyPresent {
            print("\(outcome.version) is already published (identical); nothing written")
        } else {
            print(
                "published \(outcome.version): \(SnapshotCommandSupport.byteCount(sent)) in "
                    + String(
                        format: "%.2f s (%.1f MB/s), validated in %.0f ms", seconds,
                        Double(sent) / 1e6 / max(seconds, 1e-9), outcome.validateMilliseconds))
        }
        if !outcome.activeVersion.isEmpty { print("active: \(outcome.activeVersion)") }
    }
}

/// Set once a call has ended, read by the sending loop.
private final class CallEnded: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
}

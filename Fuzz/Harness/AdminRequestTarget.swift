import Foundation
import GRPCCore
import NIOCore
import RankingAPI
import RankingEngine
import RankingModel
import Snapshot
import SnapshotLifecycle

/// `admin-request`: what an admin client sends, as a sequence of messages (each a 16-bit length
/// then its bytes), through the admin codec into a fresh snapshot store in a scratch directory.
/// The first input byte picks the method: 0 Publish (a header then chunks, committed when the
/// stream ends), 1 Activate then Status, 2 Rollback. Checked: nothing is ever written outside the
/// store's root, and a store error is never INTERNAL.
enum AdminRequestTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        let fixture = FuzzFixture.shared
        var cursor = ByteCursor(bytes)
        let method = cursor.byte() % 3
        let scratch = fixture.scratchDirectory("admin")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let root = scratch + "/root"
        let store: SnapshotStore<ServingSnapshot>
        do {
            store = try SnapshotStore(root: root, registry: SnapshotRegistry<ServingSnapshot>())
        } catch {
            return fuzzCheck(false, "cannot create a store: \(error)")
        }
        switch method {
        case 0: publish(&cursor, store: store)
        case 1:
            guard let version = try? AdminCodec.decodeActivateRequest(ByteBuffer(bytes: cursor.lengthPrefixed()))
            else { return }
            do throws(SnapshotStoreError) { _ = try store.activate(version) } catch { check(error) }
            _ = AdminCodec.encodeStatus(store.status())
        default:
            guard
                (try? AdminCodec.decodeEmptyRequest(ByteBuffer(bytes: cursor.lengthPrefixed()), rollback: true))
                    != nil
            else { return }
            do throws(SnapshotStoreError) { _ = try store.rollback() } catch { check(error) }
        }
        // Whatever the names in the messages said, the scratch directory holds only the root.
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: scratch)) ?? []
        fuzzCheck(entries == ["root"], "publish wrote outside the store root: \(entries)")
    }

    private static func publish(_ cursor: inout ByteCursor, store: SnapshotStore<ServingSnapshot>) {
        var session: PublishSession<ServingSnapshot>?
        defer { session?.abort() }
        while cursor.remaining > 0 {
            let message: PublishMessage
            do throws(GRPCStatus) {
                message = try AdminCodec.decodePublishRequest(ByteBuffer(bytes: cursor.lengthPrefixed()))
            } catch {
                return fuzzCheck(error.code == .invalidArgument, "decode failed with \(error.code)")
            }
            do throws(SnapshotStoreError) {
                switch message {
                case .header(let header):
                    guard session == nil else { return }  // the service rejects a second header
                    session = try store.beginPublish(header)
                case .chunk(let chunk):
                    guard let session else { return }  // the service rejects a chunk before the header
                    try session.write(chunk)
                }
            } catch {
                return check(error)
            }
        }
        guard let committing = session else { return }
        session = nil
        do throws(SnapshotStoreError) {
            let result = try committing.commit()
            _ = AdminCodec.encodePublishResponse(result)
        } catch {
            check(error)
        }
    }

    private static func check(_ error: SnapshotStoreError) {
        fuzzCheck(error.code != .internalError, "INTERNAL from the store: \(error.message)")
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        let fixture = FuzzFixture.shared
        let directory = fixture.snapshotDirectory
        guard let manifestData = FileManager.default.contents(atPath: directory + "/" + SnapshotFiles.manifest),
            let manifest = try? SnapshotManifest.parse(manifestData, file: "manifest.json")
        else { fatalError("fixture snapshot has no manifest") }
        let files = manifest.files.map { PublishFileInfo(name: $0.name, size: $0.size, xxh64: $0.xxh64) }
        func encode(_ message: PublishMessage) -> [UInt8] {
            Array(buffer: AdminCodec.encodePublishRequest(message))
        }
        var complete = [
            encode(
                .header(
                    PublishHeader(
                        version: manifest.snapshotVersion, manifest: Array(manifestData), files: files, activate: true))
            )
        ]
        for file in manifest.files {
            let data = Array(FileManager.default.contents(atPath: directory + "/" + file.name) ?? Data())
            // Chunks of at most 16 KiB, as a real client would send several per file.
            var offset = 0
            repeat {
                let end = min(data.count, offset + 16 * 1024)
                complete.append(
                    encode(.chunk(PublishChunk(path: file.name, offset: offset, data: Array(data[offset..<end])))))
                offset = end
            } while offset < data.count
        }
        let escape = [
            encode(
                .header(
                    PublishHeader(
                        version: manifest.snapshotVersion, manifest: Array(manifestData), files: files))),
            encode(.chunk(PublishChunk(path: "../escape", offset: 0, data: [1, 2, 3]))),
        ]
        return [
            ("publish-complete-and-activate", [0] + lengthPrefixed(complete)),
            ("publish-path-escape", [0] + lengthPrefixed(escape)),
            ("activate", [1] + lengthPrefixed([Array(buffer: AdminCodec.encodeActivateRequest(version: "v-fuzz"))])),
            ("rollback", [2] + lengthPrefixed([[]])),
        ]
    }
}

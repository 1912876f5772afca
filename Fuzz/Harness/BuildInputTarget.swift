import Foundation
import RankingEngine
import Snapshot

/// `build-npy` and `build-jsonl`: the fixture's `rankctl build` inputs with one replaced by the
/// input bytes (the first byte picks which: `users.npy`/`items.npy`, or `items.jsonl`/the user
/// id list), through the snapshot builder. Checked: a build that succeeds yields a snapshot that
/// passes the full load-time validation (checksums, structure, graph), and a failure names a
/// problem.
enum BuildInputTarget {
    enum Kind { case npy, text }

    static func run(_ bytes: UnsafeRawBufferPointer, kind: Kind) {
        let fixture = FuzzFixture.shared
        var cursor = ByteCursor(bytes)
        let second = cursor.byte() & 1 == 1
        let directory = fixture.scratchDirectory("build")
        defer { try? FileManager.default.removeItem(atPath: directory) }

        var inputs = fixture.inputs
        let replacedPath = directory + "/input"
        switch (kind, second) {
        case (.npy, false): inputs.users = replacedPath
        case (.npy, true): inputs.items = replacedPath
        case (.text, false): inputs.itemsMeta = replacedPath
        case (.text, true): inputs.userIds = replacedPath
        }
        _ = FileManager.default.createFile(atPath: replacedPath, contents: Data(cursor.rest()))
        var options = FuzzFixture.buildOptions(inputs, output: directory + "/snapshot")
        options.hnsw.efConstruction = 8
        do throws(SnapshotError) {
            try SnapshotBuilder.build(options)
        } catch {
            return fuzzCheck(!"\(error)".isEmpty, "build failed without a message")
        }
        do throws(ServingSnapshotError) {
            _ = try ServingSnapshot.load(directory: directory + "/snapshot", prefault: false)
        } catch {
            fuzzCheck(false, "the builder accepted inputs but wrote a snapshot that does not load: \(error)")
        }
    }

    static func seeds(kind: Kind) -> [(name: String, bytes: [UInt8])] {
        let inputs = FuzzFixture.shared.inputs
        func read(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }
        switch kind {
        case .npy:
            return [("users-npy", [0] + read(inputs.users)), ("items-npy", [1] + read(inputs.items))]
        case .text:
            return [("items-jsonl", [0] + read(inputs.itemsMeta)), ("user-ids", [1] + read(inputs.userIds))]
        }
    }
}

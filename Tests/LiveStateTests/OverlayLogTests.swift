import Foundation
import MappedStorage
import Testing

@testable import LiveState

@Suite struct OverlayLogTests {
    let path = NSTemporaryDirectory() + "overlay-log-" + UUID().uuidString + ".wal"

    static func items(_ n: Int, at: Int64) -> OverlayRecord {
        .items(
            (0..<n).map { index in
                var change = ItemChange(itemID: "sku-\(index)")
                (change.priceAt, change.priceCents) = (at, Int64(100 * index))
                change.tags["sale"] = .init(at: at, add: index % 2 == 0)
                return change
            })
    }

    func writeThree() throws -> [UInt8] {
        let (log, replay) = try OverlayLog.open(path: path)
        #expect(replay.records.isEmpty)
        #expect(try log.append([(Self.items(3, at: 10), at: 10)]) == 1)
        #expect(
            try log.append([
                (.userDeletions([UserDeletion(userID: "u_1", at: 11)]), at: 11), (Self.items(1, at: 12), at: 12),
            ]) == 2)
        try log.sync()
        return try AppendOnlyFile(path: path).readAll()
    }

    @Test func recordsRoundTripInOrder() throws {
        defer { unlink(path) }
        _ = try writeThree()
        let (log, replay) = try OverlayLog.open(path: path)
        #expect(
            replay.records == [
                Self.items(3, at: 10), .userDeletions([UserDeletion(userID: "u_1", at: 11)]), Self.items(1, at: 12),
            ])
        #expect(replay.droppedBytes == 0)
        #expect(log.nextSequence == 4)
    }

    @Test func tornTailAtEveryLengthIsDroppedWholeAndLogContinues() throws {
        defer { unlink(path) }
        let full = try writeThree()
        let lastFrame = OverlayLog.frame(Self.items(1, at: 12), sequence: 3, at: 12).count
        let lastStart = full.count - lastFrame
        for cut in lastStart..<full.count {
            unlink(path)
            let file = try AppendOnlyFile(path: path)
            try file.append(Array(full[0..<cut]))
            let (log, replay) = try OverlayLog.open(path: path)
            #expect(replay.records.count == 2, "cut at \(cut)")
            #expect(replay.droppedBytes == cut - lastStart)
            #expect(log.size == lastStart, "the torn tail is cut off before anything is appended")
            #expect(log.nextSequence == 3)
        }
        // After a cut, a new record follows the last whole one and replays.
        let (log, _) = try OverlayLog.open(path: path)
        _ = try log.append([(Self.items(2, at: 20), at: 20)])
        try log.sync()
        let (_, replay) = try OverlayLog.open(path: path)
        #expect(replay.records.count == 3)
        #expect(replay.records.last == Self.items(2, at: 20))
    }

    @Test func flippedByteInLastRecordDropsItAndZeroFilledTailIsDropped() throws {
        defer { unlink(path) }
        var bytes = try writeThree()
        let lastFrame = OverlayLog.frame(Self.items(1, at: 12), sequence: 3, at: 12).count
        bytes[bytes.count - lastFrame + 30] ^= 0x40
        unlink(path)
        try AppendOnlyFile(path: path).append(bytes + [UInt8](repeating: 0, count: 4096))
        let (_, replay) = try OverlayLog.open(path: path)
        #expect(replay.records.count == 2)
        #expect(replay.dropReason.contains("checksum"))
        #expect(replay.droppedBytes == lastFrame + 4096)
    }

    @Test func refusesAFileThatIsNotALog() throws {
        defer { unlink(path) }
        try AppendOnlyFile(path: path).append(Array(String(repeating: "not a log ", count: 10).utf8))
        #expect(throws: LiveStateError.self) { try OverlayLog.open(path: path) }
        var header = OverlayLog.header(firstSequence: 1)
        header[20] ^= 1
        unlink(path)
        try AppendOnlyFile(path: path).append(header)
        #expect(throws: LiveStateError.self) { try OverlayLog.open(path: path) }
        #expect(try AppendOnlyFile(path: path).size == 64, "a log we cannot read is never truncated")
    }

    @Test func rewriteKeepsSequenceNumbersCounting() throws {
        defer { unlink(path); unlink(path + ".compact") }
        _ = try writeThree()
        let log = try OverlayLog.rewrite(path: path, firstSequence: 4, records: [(Self.items(2, at: 30), at: 30)])
        #expect(log.nextSequence == 5)
        let (reopened, replay) = try OverlayLog.open(path: path)
        #expect(replay.records == [Self.items(2, at: 30)])
        #expect(reopened.nextSequence == 5)
    }
}

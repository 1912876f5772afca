import MappedStorage

/// The live overlay's write-ahead log: `ROOT/.live/overlay.wal`, a 64-byte header and then framed,
/// checksummed records (byte layout in docs/SNAPSHOT_FORMAT.md, "The live overlay log").
///
/// - Appends: ``append(_:)`` frames a group of records and writes them with one `write(2)`;
///   ``sync()`` makes them durable with one `fdatasync(2)`. Callers are acknowledged only after the sync.
/// - Replay: ``open(path:)`` reads every record in order and stops at the first frame that is
///   incomplete, fails its checksum, or breaks the sequence: a torn tail (a crash during an append
///   whose records were never acknowledged). The tail is cut off before anything new is appended, so
///   a record is applied entirely or not at all.
/// - Compaction: ``rewrite(path:firstSequence:records:)`` writes a new log beside the old one, syncs it
///   and renames it over the old one (then syncs the directory): a crash leaves one or the other.
///
/// Not thread-safe: the overlay's writer thread owns it.
final class OverlayLog {
    static let magic: [UInt8] = Array("RKDLIVE1".utf8)
    static let formatVersion: UInt32 = 1
    static let headerBytes = 64
    /// Frame fields before the payload: length u32, kind u8, 3 zero bytes, sequence u64, time i64.
    static let frameHeaderBytes = 24
    /// Largest payload a frame may declare (a 10,000-item batch with long ids and tags fits).
    static let maxPayloadBytes = 256 << 20

    let path: String
    private let file: AppendOnlyFile
    /// The sequence number the next record gets.
    private(set) var nextSequence: UInt64

    /// Bytes in the log.
    var size: Int { file.size }

    private var syncedSize: Int
    private var syncedSequence: UInt64

    private init(path: String, file: AppendOnlyFile, nextSequence: UInt64) {
        self.path = path
        self.file = file
        self.nextSequence = nextSequence
        syncedSize = file.size
        syncedSequence = nextSequence
    }

    /// What opening found.
    struct Replay {
        var records: [OverlayRecord] = []
        /// Bytes cut off the end (a torn tail), 0 when the log ended cleanly.
        var droppedBytes = 0
        /// Why the tail was dropped.
        var dropReason = ""
    }

    /// Opens (creating if absent) the log at `path`, reads every whole record, and cuts off a torn tail.
    /// - Throws: ``LiveStateError`` when the file cannot be read or its header is not a log's (a file
    ///   that is not ours is never truncated).
    static func open(path: String) throws(LiveStateError) -> (OverlayLog, Replay) {
        let file: AppendOnlyFile
        let bytes: [UInt8]
        do {
            file = try AppendOnlyFile(path: path)
            bytes = try file.readAll()
        } catch {
            throw LiveStateError(.internalError, "\(path): \(error)")
        }
        var replay = Replay()
        if bytes.count < headerBytes {
            // A crash while the header of a new log was written (nothing was ever acknowledged), or a
            // new file: start it.
            guard bytes.allSatisfy({ $0 == 0 }) || bytes.starts(with: magic.prefix(bytes.count)) else {
                throw LiveStateError(.internalError, "\(path): \(bytes.count) bytes that are not a live overlay log")
            }
            try storage(path) { () throws(MappedStorageError) in
                if file.size > 0 { try file.truncate(to: 0) }
                try file.append(header(firstSequence: 1))
                try file.sync()
            }
            return (OverlayLog(path: path, file: file, nextSequence: 1), replay)
        }
        let firstSequence = try checkHeader(bytes, path: path)
        var sequence = firstSequence
        var offset = headerBytes
        while offset < bytes.count {
            switch frame(in: bytes, at: offset, expecting: sequence) {
            case .record(let record, let length):
                replay.records.append(record)
                sequence += 1
                offset += length
            case .torn(let reason):
                replay.droppedBytes = bytes.count - offset
                replay.dropReason = "record \(sequence) at byte \(offset): \(reason)"
                try storage(path) { () throws(MappedStorageError) in try file.truncate(to: offset) }
                return (OverlayLog(path: path, file: file, nextSequence: sequence), replay)
            }
        }
        return (OverlayLog(path: path, file: file, nextSequence: sequence), replay)
    }

    /// Appends `records` (not yet durable) and returns the first one's sequence number.
    func append(_ records: [(OverlayRecord, at: Int64)]) throws(LiveStateError) -> UInt64 {
        let first = nextSequence
        var bytes: [UInt8] = []
        for (record, at) in records {
            bytes += Self.frame(record, sequence: nextSequence, at: at)
            nextSequence += 1
        }
        do {
            try file.append(bytes)
        } catch {
            nextSequence = first
            throw LiveStateError(.internalError, "\(path): \(error)")
        }
        return first
    }

    /// Makes every appended record durable.
    func sync() throws(LiveStateError) {
        try storage(path) { () throws(MappedStorageError) in try file.sync() }
        syncedSize = file.size
        syncedSequence = nextSequence
    }

    /// Cuts off what was appended since the last successful ``sync()`` (a failed group), best effort.
    func discardUnsynced() {
        nextSequence = syncedSequence
        if file.size > syncedSize { try? file.truncate(to: syncedSize) }
    }

    /// Replaces the log at `path` with one holding `records`, numbered from `firstSequence`, atomically;
    /// returns the new log, open for appending.
    static func rewrite(path: String, firstSequence: UInt64, records: [(OverlayRecord, at: Int64)])
        throws(LiveStateError) -> OverlayLog
    {
        let temporary = path + ".compact"
        try storage(path) { () throws(MappedStorageError) in
            let writer = try FileWriter(path: temporary)
            try writer.write(header(firstSequence: firstSequence))
            var sequence = firstSequence
            for (record, at) in records {
                try writer.write(frame(record, sequence: sequence, at: at))
                sequence += 1
            }
            try writer.finish()
            try FileSystemOps.rename(temporary, to: path)
            try FileSystemOps.syncDirectory(parentDirectory(of: path))
        }
        let (log, replay) = try open(path: path)
        guard replay.droppedBytes == 0, log.nextSequence == firstSequence + UInt64(records.count) else {
            throw LiveStateError(.internalError, "\(path): the compacted log does not read back: \(replay.dropReason)")
        }
        return log
    }

    // MARK: Format

    static func header(firstSequence: UInt64) -> [UInt8] {
        var writer = LogByteWriter()
        writer.bytes += magic
        writer.integer(formatVersion)
        writer.integer(UInt32(headerBytes))
        writer.integer(firstSequence)
        writer.pad(toMultipleOf: 56)
        let checksum = writer.bytes.withUnsafeBytes { XXHash64.hash($0) }
        writer.integer(checksum)
        return writer.bytes
    }

    private static func checkHeader(_ bytes: [UInt8], path: String) throws(LiveStateError) -> UInt64 {
        guard bytes.starts(with: magic) else {
            throw LiveStateError(.internalError, "\(path): not a live overlay log (bad magic)")
        }
        var reader = LogByteReader(bytes[8..<headerBytes])
        var tail = LogByteReader(bytes[56..<64])
        // The slice is 56 bytes and the tail 8: these reads cannot overrun.
        let version = (try? reader.integer(UInt32.self)) ?? 0
        _ = try? reader.integer(UInt32.self)
        let first = (try? reader.integer(UInt64.self)) ?? 0
        let stored = (try? tail.integer(UInt64.self)) ?? 0
        let actual = bytes[0..<56].withUnsafeBytes { XXHash64.hash($0) }
        guard stored == actual else { throw LiveStateError(.internalError, "\(path): header checksum mismatch") }
        guard version == formatVersion else {
            throw LiveStateError(
                .internalError, "\(path): log format version \(version), this build reads \(formatVersion)")
        }
        guard first >= 1 else { throw LiveStateError(.internalError, "\(path): first sequence number 0") }
        return first
    }

    static func frame(_ record: OverlayRecord, sequence: UInt64, at: Int64) -> [UInt8] {
        let payload = record.encodePayload()
        var writer = LogByteWriter()
        writer.integer(UInt32(payload.count))
        writer.integer(record.kind)
        writer.bytes += [0, 0, 0]
        writer.integer(sequence)
        writer.integer(at)
        writer.bytes += payload
        writer.pad(toMultipleOf: 8)
        let checksum = writer.bytes.withUnsafeBytes { XXHash64.hash($0) }
        writer.integer(checksum)
        return writer.bytes
    }

    enum Frame {
        case record(OverlayRecord, length: Int)
        case torn(String)
    }

    /// The frame at `offset`, checked: complete, checksum, sequence, payload.
    static func frame(in bytes: [UInt8], at offset: Int, expecting sequence: UInt64) -> Frame {
        let available = bytes.count - offset
        guard available >= frameHeaderBytes + 8 else { return .torn("\(available) bytes, shorter than a frame") }
        var reader = LogByteReader(bytes[offset..<offset + frameHeaderBytes])
        do throws(LogByteReader.Overrun) {
            let payloadBytes = Int(try reader.integer(UInt32.self))
            let kind = try reader.integer(UInt8.self)
            guard payloadBytes <= maxPayloadBytes else { return .torn("payload length \(payloadBytes) is implausible") }
            let padded = (frameHeaderBytes + payloadBytes + 7) & ~7
            guard available >= padded + 8 else {
                return .torn("frame of \(padded + 8) bytes, only \(available) present")
            }
            var tail = LogByteReader(bytes[offset + padded..<offset + padded + 8])
            let stored = try tail.integer(UInt64.self)
            let actual = bytes[offset..<offset + padded].withUnsafeBytes { XXHash64.hash($0) }
            guard stored == actual else { return .torn("checksum mismatch") }
            _ = try reader.integer(UInt8.self)
            _ = try reader.integer(UInt16.self)
            let found = try reader.integer(UInt64.self)
            guard found == sequence else { return .torn("sequence \(found), expected \(sequence)") }
            let start = offset + frameHeaderBytes
            guard let record = OverlayRecord.decode(kind: kind, payload: bytes[start..<start + payloadBytes]) else {
                return .torn("kind \(kind) payload does not decode")
            }
            return .record(record, length: padded + 8)
        } catch {
            return .torn("short frame header")
        }
    }

    private static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// Runs a storage operation on the log at `path`, turning its error into an internal live-state error.
func storage<R>(_ path: String, _ body: () throws(MappedStorageError) -> R) throws(LiveStateError) -> R {
    do {
        return try body()
    } catch {
        throw LiveStateError(.internalError, "\(path): \(error)")
    }
}

/// A refused or failed live update: a code for the gRPC error model and a message naming the field.
public struct LiveStateError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case invalidArgument, failedPrecondition, unavailable, internalError
    }
    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

import CProtobufC
public import GRPCCore
public import NIOCore
public import RankingModel
import RankingProtos

/// `ranking.v1.SnapshotAdmin` messages ⇄ Swift values, through protobuf-c. The server decodes
/// requests and encodes responses; rankctl and tests do the reverse.
public enum AdminCodec {
    // MARK: Publish

    /// Decodes one message of a `Publish` stream. A message with neither a header nor a chunk is
    /// `INVALID_ARGUMENT`.
    public static func decodePublishRequest(_ buffer: ByteBuffer) throws(GRPCStatus) -> PublishMessage {
        try ProtobufCodec.decode(
            buffer, initializer: ranking__v1__publish_request__init
        ) { (message) throws(GRPCStatus) -> PublishMessage in
            let m = message.pointee
            switch m.kind_case {
            case RANKING__V1__PUBLISH_REQUEST__KIND_HEADER:
                guard let h = m.header?.pointee else { throw GRPCStatus(.invalidArgument, "header: missing") }
                var files: [PublishFileInfo] = []
                for index in 0..<h.n_files {
                    guard let f = h.files[index]?.pointee else { continue }
                    guard f.size <= UInt64(Int.max) else {
                        throw GRPCStatus(.invalidArgument, "header.files[\(index)].size: \(f.size) is too large")
                    }
                    files.append(
                        PublishFileInfo(
                            name: ProtobufCodec.string(f.name), size: Int(f.size),
                            xxh64: ProtobufCodec.string(f.xxh64)))
                }
                return .header(
                    PublishHeader(
                        version: ProtobufCodec.string(h.version), manifest: ProtobufCodec.bytes(h.manifest),
                        files: files, activate: h.activate != 0))
            case RANKING__V1__PUBLISH_REQUEST__KIND_CHUNK:
                guard let c = m.chunk?.pointee else { throw GRPCStatus(.invalidArgument, "chunk: missing") }
                guard c.offset <= UInt64(Int.max) else {
                    throw GRPCStatus(.invalidArgument, "chunk.offset: \(c.offset) is too large")
                }
                return .chunk(
                    PublishChunk(
                        path: ProtobufCodec.string(c.path), offset: Int(c.offset), data: ProtobufCodec.bytes(c.data)))
            default:
                throw GRPCStatus(.invalidArgument, "PublishRequest: neither header nor chunk is set")
            }
        }
    }

    /// Encodes one message of a `Publish` stream (client side).
    public static func encodePublishRequest(_ request: PublishMessage, allocator: ByteBufferAllocator = .init())
        -> ByteBuffer
    {
        let arena = CArena(blockSize: 16 * 1024)
        let message = arena.allocate(Ranking__V1__PublishRequest.self)
        ranking__v1__publish_request__init(message)
        switch request {
        case .header(let header):
            let h = arena.allocate(Ranking__V1__PublishHeader.self)
            ranking__v1__publish_header__init(h)
            h.pointee.version = arena.cString(header.version)
            h.pointee.manifest = binary(header.manifest, arena: arena)
            let files = arena.allocate(UnsafeMutablePointer<Ranking__V1__PublishFile>?.self, count: header.files.count)
            for (index, file) in header.files.enumerated() {
                let f = arena.allocate(Ranking__V1__PublishFile.self)
                ranking__v1__publish_file__init(f)
                f.pointee.name = arena.cString(file.name)
                f.pointee.size = UInt64(file.size)
                f.pointee.xxh64 = arena.cString(file.xxh64)
                files[index] = f
            }
            (h.pointee.n_files, h.pointee.files) = (header.files.count, header.files.isEmpty ? nil : files)
            h.pointee.activate = header.activate ? 1 : 0
            message.pointee.kind_case = RANKING__V1__PUBLISH_REQUEST__KIND_HEADER
            message.pointee.header = h
        case .chunk(let chunk):
            let c = arena.allocate(Ranking__V1__FileChunk.self)
            ranking__v1__file_chunk__init(c)
            c.pointee.path = arena.cString(chunk.path)
            c.pointee.offset = UInt64(chunk.offset)
            c.pointee.data = binary(chunk.data, arena: arena)
            message.pointee.kind_case = RANKING__V1__PUBLISH_REQUEST__KIND_CHUNK
            message.pointee.chunk = c
        }
        return ProtobufCodec.encode(message, allocator: allocator)
    }

    /// Encodes a `PublishResponse` (server side).
    public static func encodePublishResponse(_ result: PublishResult, allocator: ByteBufferAllocator = .init())
        -> ByteBuffer
    {
        let arena = CArena(blockSize: 1024)
        let m = arena.allocate(Ranking__V1__PublishResponse.self)
        ranking__v1__publish_response__init(m)
        m.pointee.version = arena.cString(result.version)
        m.pointee.already_present = result.alreadyPresent ? 1 : 0
        m.pointee.bytes_written = UInt64(result.bytesWritten)
        m.pointee.active_version = arena.cString(result.activeVersion)
        m.pointee.validate_ms = result.validateMilliseconds
        return ProtobufCodec.encode(m, allocator: allocator)
    }

    /// Decodes a `PublishResponse` (client side).
    public static func decodePublishResponse(_ buffer: ByteBuffer) throws(GRPCStatus) -> PublishResult {
        try ProtobufCodec.decode(buffer, initializer: ranking__v1__publish_response__init) { (m) throws(GRPCStatus) in
            var result = PublishResult(version: ProtobufCodec.string(m.pointee.version))
            result.alreadyPresent = m.pointee.already_present != 0
            result.bytesWritten = Int(clamping: m.pointee.bytes_written)
            result.activeVersion = ProtobufCodec.string(m.pointee.active_version)
            result.validateMilliseconds = m.pointee.validate_ms
            return result
        }
    }

    // MARK: Activate, Rollback

    /// Decodes an `ActivateRequest` and returns its version.
    public static func decodeActivateRequest(_ buffer: ByteBuffer) throws(GRPCStatus) -> String {
        try ProtobufCodec.decode(buffer, initializer: ranking__v1__activate_request__init) {
            (m) throws(GRPCStatus) -> String in ProtobufCodec.string(m.pointee.version)
        }
    }

    /// Encodes an `ActivateRequest` (client side).
    public static func encodeActivateRequest(version: String, allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        let arena = CArena(blockSize: 1024)
        let m = arena.allocate(Ranking__V1__ActivateRequest.self)
        ranking__v1__activate_request__init(m)
        m.pointee.version = arena.cString(version)
        return ProtobufCodec.encode(m, allocator: allocator)
    }

    /// Checks that `buffer` is a valid (empty) `RollbackRequest` or `StatusRequest`: unknown
    /// fields are skipped, malformed bytes are `INVALID_ARGUMENT`.
    public static func decodeEmptyRequest(_ buffer: ByteBuffer, rollback: Bool) throws(GRPCStatus) {
        if rollback {
            try ProtobufCodec.decode(buffer, initializer: ranking__v1__rollback_request__init) { _ throws(GRPCStatus) in
            }
        } else {
            try ProtobufCodec.decode(buffer, initializer: ranking__v1__status_request__init) { _ throws(GRPCStatus) in }
        }
    }

    /// Encodes an `ActivateResponse` (or, with `rollback`, a `RollbackResponse`: same fields).
    public static func encodeActivation(
        _ result: ActivationResult, rollback: Bool = false, allocator: ByteBufferAllocator = .init()
    ) -> ByteBuffer {
        let arena = CArena(blockSize: 1024)
        if rollback {
            let m = arena.allocate(Ranking__V1__RollbackResponse.self)
            ranking__v1__rollback_response__init(m)
            m.pointee.active_version = arena.cString(result.activeVersion)
            m.pointee.previous_version = arena.cString(result.previousVersion)
            m.pointee.load_ms = result.loadMilliseconds
            return ProtobufCodec.encode(m, allocator: allocator)
        }
        let m = arena.allocate(Ranking__V1__ActivateResponse.self)
        ranking__v1__activate_response__init(m)
        m.pointee.active_version = arena.cString(result.activeVersion)
        m.pointee.previous_version = arena.cString(result.previousVersion)
        m.pointee.load_ms = result.loadMilliseconds
        return ProtobufCodec.encode(m, allocator: allocator)
    }

    /// Decodes an `ActivateResponse` or `RollbackResponse` (client side; the fields coincide).
    public static func decodeActivation(_ buffer: ByteBuffer) throws(GRPCStatus) -> ActivationResult {
        try ProtobufCodec.decode(buffer, initializer: ranking__v1__activate_response__init) {
            (m) throws(GRPCStatus) -> ActivationResult in
            ActivationResult(
                activeVersion: ProtobufCodec.string(m.pointee.active_version),
                previousVersion: ProtobufCodec.string(m.pointee.previous_version),
                loadMilliseconds: m.pointee.load_ms)
        }
    }

    // MARK: Status

    /// Encodes a `StatusResponse` (server side).
    public static func encodeStatus(_ status: SnapshotStatus, allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        let arena = CArena(blockSize: 4 * 1024)
        let m = arena.allocate(Ranking__V1__StatusResponse.self)
        ranking__v1__status_response__init(m)
        m.pointee.active_version = arena.cString(status.activeVersion)
        m.pointee.activated_at_unix_ms = status.activatedAtUnixMilliseconds
        m.pointee.activated_by = arena.cString(status.activatedBy)
        let retained = arena.allocate(
            UnsafeMutablePointer<Ranking__V1__RetainedVersion>?.self, count: status.retained.count)
        for (index, info) in status.retained.enumerated() {
            let r = arena.allocate(Ranking__V1__RetainedVersion.self)
            ranking__v1__retained_version__init(r)
            r.pointee.version = arena.cString(info.version)
            r.pointee.bytes = UInt64(info.bytes)
            r.pointee.items = UInt64(info.items)
            r.pointee.users = UInt64(info.users)
            r.pointee.dimension = UInt32(clamping: info.dimension)
            r.pointee.created_at = arena.cString(info.createdAt)
            retained[index] = r
        }
        (m.pointee.n_retained, m.pointee.retained) = (status.retained.count, status.retained.isEmpty ? nil : retained)
        m.pointee.rollback_version = arena.cString(status.rollbackVersion)
        m.pointee.items = UInt64(status.items)
        m.pointee.users = UInt64(status.users)
        m.pointee.dimension = UInt32(clamping: status.dimension)
        m.pointee.bytes_mapped = UInt64(status.bytesMapped)
        m.pointee.mapped_snapshots = UInt32(clamping: status.mappedSnapshots)
        m.pointee.bytes_mapped_total = UInt64(status.bytesMappedTotal)
        m.pointee.retain = UInt32(clamping: status.retain)
        m.pointee.overlay_items = UInt64(status.overlay.items)
        m.pointee.overlay_removed_items = UInt64(status.overlay.removedItems)
        m.pointee.overlay_deleted_users = UInt64(status.overlay.deletedUsers)
        m.pointee.overlay_log_bytes = UInt64(status.overlay.logBytes)
        m.pointee.overlay_sequence = status.overlay.sequence
        return ProtobufCodec.encode(m, allocator: allocator)
    }

    /// Decodes a `StatusResponse` (client side).
    public static func decodeStatus(_ buffer: ByteBuffer) throws(GRPCStatus) -> SnapshotStatus {
        try ProtobufCodec.decode(buffer, initializer: ranking__v1__status_response__init) {
            (message) throws(GRPCStatus) -> SnapshotStatus in
            let m = message.pointee
            var status = SnapshotStatus()
            status.activeVersion = ProtobufCodec.string(m.active_version)
            status.activatedAtUnixMilliseconds = m.activated_at_unix_ms
            status.activatedBy = ProtobufCodec.string(m.activated_by)
            for index in 0..<m.n_retained {
                guard let r = m.retained[index]?.pointee else { continue }
                var info = RetainedVersionInfo(version: ProtobufCodec.string(r.version))
                info.bytes = Int(clamping: r.bytes)
                info.items = Int(clamping: r.items)
                info.users = Int(clamping: r.users)
                info.dimension = Int(r.dimension)
                info.createdAt = ProtobufCodec.string(r.created_at)
                status.retained.append(info)
            }
            status.rollbackVersion = ProtobufCodec.string(m.rollback_version)
            status.items = Int(clamping: m.items)
            status.users = Int(clamping: m.users)
            status.dimension = Int(m.dimension)
            status.bytesMapped = Int(clamping: m.bytes_mapped)
            status.mappedSnapshots = Int(m.mapped_snapshots)
            status.bytesMappedTotal = Int(clamping: m.bytes_mapped_total)
            status.retain = Int(m.retain)
            status.overlay.items = Int(clamping: m.overlay_items)
            status.overlay.removedItems = Int(clamping: m.overlay_removed_items)
            status.overlay.deletedUsers = Int(clamping: m.overlay_deleted_users)
            status.overlay.logBytes = Int(clamping: m.overlay_log_bytes)
            status.overlay.sequence = m.overlay_sequence
            return status
        }
    }

    /// A `bytes` field pointing at an arena copy of `bytes`.
    private static func binary(_ bytes: [UInt8], arena: CArena) -> ProtobufCBinaryData {
        guard !bytes.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        let pointer = arena.allocate(byteCount: bytes.count)
        bytes.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        return ProtobufCBinaryData(len: bytes.count, data: pointer.assumingMemoryBound(to: UInt8.self))
    }
}

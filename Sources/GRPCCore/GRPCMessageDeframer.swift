public import NIOCore

/// Splits the bytes of a gRPC stream into messages (gRPC over HTTP/2: `Length-Prefixed-Message`
/// = 1-byte compressed flag, 4-byte big-endian length, then the message).
///
/// Bytes may arrive in any split — a prefix across two DATA frames, many messages in one frame —
/// so the deframer buffers until a whole message is there. The size limit is enforced as soon as
/// a prefix is read, before any of the message is buffered.
///
/// Not thread-safe: one deframer per stream, used on its connection's event loop.
public struct GRPCMessageDeframer {
    /// Largest message accepted, in bytes.
    public let maxMessageSize: Int
    private var buffer: ByteBuffer
    private var pendingLength: Int?

    /// Creates a deframer that rejects messages larger than `maxMessageSize` bytes.
    public init(maxMessageSize: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.maxMessageSize = maxMessageSize
        self.buffer = allocator.buffer(capacity: 0)
    }

    /// Appends received bytes. They are copied: the caller's memory may go away after the call.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        reuseStorageIfConsumed()
        buffer.writeBytes(bytes)
    }

    /// Appends received bytes.
    public mutating func append(_ bytes: ByteBuffer) {
        reuseStorageIfConsumed()
        var bytes = bytes
        buffer.writeBuffer(&bytes)
    }

    /// Starts writing at the front again once everything was read, instead of growing the buffer
    /// forever. Done here rather than in `next()`: while the last message (a slice of the same
    /// storage) is alive, clearing copies the storage, which a unary call never needs.
    private mutating func reuseStorageIfConsumed() {
        if buffer.readableBytes == 0 && buffer.readerIndex > 0 { buffer.clear() }
    }

    /// Returns the next complete message, or `nil` if more bytes are needed.
    ///
    /// - Throws: `RESOURCE_EXHAUSTED` when the prefix announces more than `maxMessageSize` bytes;
    ///   `UNIMPLEMENTED` for a compressed message (only `identity` is supported);
    ///   `INVALID_ARGUMENT` for a flag byte other than 0 or 1.
    public mutating func next() throws(GRPCStatus) -> ByteBuffer? {
        if pendingLength == nil {
            guard buffer.readableBytes >= 5,
                let flag = buffer.readInteger(as: UInt8.self),
                let length = buffer.readInteger(endianness: .big, as: UInt32.self)
            else { return nil }
            switch flag {
            case 0: break
            case 1:
                throw GRPCStatus(
                    .unimplemented,
                    "compressed messages are not supported: send with grpc-encoding identity (no compression)")
            default:
                throw GRPCStatus(
                    .invalidArgument, "invalid gRPC message prefix: compressed flag is \(flag), not 0 or 1")
            }
            guard Int(length) <= maxMessageSize else {
                throw GRPCStatus(
                    .resourceExhausted,
                    "received message of \(length) bytes is larger than the limit of \(maxMessageSize) bytes")
            }
            pendingLength = Int(length)
        }
        guard let length = pendingLength, let message = buffer.readSlice(length: length) else { return nil }
        pendingLength = nil
        return message
    }

    /// Whether bytes of an incomplete message are buffered (an error once the stream has ended).
    public var hasPartialMessage: Bool {
        pendingLength != nil || buffer.readableBytes > 0
    }

    /// Describes the incomplete message for an error message.
    public var partialMessageDescription: String {
        if let length = pendingLength {
            return "stream ended inside a message: got \(buffer.readableBytes) of \(length) bytes"
        }
        return "stream ended inside a message prefix: got \(buffer.readableBytes) of 5 bytes"
    }
}

/// Writes the 5-byte gRPC message prefix followed by the message.
public enum GRPCMessageFramer {
    /// Appends `message` to `buffer` as one uncompressed length-prefixed message.
    public static func write(_ message: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(message.readableBytes), endianness: .big)
        var message = message
        buffer.writeBuffer(&message)
    }
}

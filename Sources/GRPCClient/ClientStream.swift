import GRPCCore
import NIOCore

/// Client side of one call's HTTP/2 stream. Lives on the connection's event loop.
final class ClientStream {
    let key: UInt64
    let sink: ClientCallSink
    var id: Int32 = -1
    /// The first message goes out from the caller's buffer instead of being copied into
    /// `outbound`: its unsent bytes, and how many bytes of its 5-byte prefix are still unsent.
    var firstMessage: ByteBuffer?
    var firstMessageLength: UInt32 = 0
    var prefixLeft = 0
    /// Framed messages queued by `send` after the first.
    var outbound: ByteBuffer
    var requestEnded = false
    var dataDeferred = false
    var drainWaiters: [EventLoopPromise<Void>] = []
    var deframer: GRPCMessageDeframer
    var messages: [ByteBuffer] = []
    var httpStatus = 0
    var grpcStatus: Int?
    var grpcMessage: String?
    var metadata: [(name: String, value: String)] = []
    var failure: GRPCStatus?
    var hasDeadline = false
    var completed = false

    init(key: UInt64, sink: ClientCallSink, allocator: ByteBufferAllocator) {
        self.key = key
        self.sink = sink
        self.outbound = allocator.buffer(capacity: 0)
        self.deframer = GRPCMessageDeframer(maxMessageSize: Int(Int32.max), allocator: allocator)
    }

    /// Request bytes queued and not yet handed to nghttp2.
    var unsentBytes: Int { prefixLeft + (firstMessage?.readableBytes ?? 0) + outbound.readableBytes }
}

import GRPCCore
import NIOConcurrencyHelpers
import NIOCore

/// The server side of one HTTP/2 stream carrying one gRPC call.
///
/// Lives on its connection's event loop. nghttp2 holds a retained reference as the stream's user
/// data (so callbacks find it without a dictionary lookup) and the connection keeps every live
/// stream on an intrusive list so it can cancel them all when the connection goes away.
final class ServerStream {
    let id: Int32

    // MARK: Request headers (filled by the header callback)

    var method: Method = .other
    var path: [UInt8] = []
    var contentTypeIsGRPC = false
    var timeout: TimeoutHeader = .none
    var unsupportedEncoding: String?
    var metadata: [(name: String, value: String)] = []
    var headerListSize = 0
    /// When the request's first HEADERS frame arrived; its header block must be complete within
    /// ``GRPCServerConfiguration/handshakeTimeout``.
    var began = NIODeadline.now()
    /// Whether the request's header block is complete.
    var headersReceived = false

    enum Method { case post, other }
    enum TimeoutHeader { case none, nanoseconds(Int64), malformed(String) }

    // MARK: Call state

    var handler: MethodHandler?
    var context: ServerCallContext?
    var deframer: GRPCMessageDeframer?
    var requestMessage: ByteBuffer?
    var requestMessageCount = 0
    var clientStreamingCall: (any ClientStreamingCall)?
    var bidirectionalCall: (any BidirectionalStreamingCall)?
    var deadlineTask: Scheduled<Void>?
    /// Set for server- and bidirectional-streaming calls: tells the handler's writer when the stream is gone.
    var writerActive: NIOLockedValueBox<Bool>?

    enum State {
        /// Receiving the request.
        case receiving
        /// The request is complete; the handler is working on it.
        case handling
        /// A final status has been decided; response bytes may still be flowing.
        case finished
        /// The stream is closed (by us, the client, or the connection).
        case closed
    }
    var state: State = .receiving

    /// Whether response messages may be queued now: once the request is complete, or at any time
    /// before the final status for a bidirectional call.
    var canSend: Bool { state == .handling || (state == .receiving && bidirectionalCall != nil) }

    // MARK: Metrics (only with `recordsMetrics`)

    /// Index of the call's route in the router (`GRPCServerMetrics.unknownRoute` if none); -1
    /// until the headers are complete, or when metrics are off.
    var routeIndex = -1
    var startedAt = NIODeadline.uptimeNanoseconds(0)

    // MARK: Flow control (deferred consumption, see `ClientStreamingCall`)

    /// Wire bytes of request messages whose `receive` future has not completed.
    var heldBytes = 0
    /// DATA bytes received but not yet returned to the stream's window, because `heldBytes` was
    /// over the limit when they arrived (their connection-window credit went back at once).
    var withheldBytes = 0
    /// Whether the client half-closed (END_STREAM received).
    var requestEnded = false

    // MARK: Response

    var responseHeadersSent = false
    var outbound: ByteBuffer
    /// A server-streaming producer waiting for `outbound` to drain to `limit` bytes
    /// (``ServerStreamWriter/whenQueued(atMost:_:)``).
    var drainWaiter: (limit: Int, body: @Sendable () -> Void)?

    /// Runs the drain waiter if the queue is short enough, or unconditionally when the stream ended.
    func fireDrainWaiter(force: Bool = false) {
        guard let waiter = drainWaiter, force || outbound.readableBytes <= waiter.limit else { return }
        drainWaiter = nil
        waiter.body()
    }
    var trailers: GRPCStatus?
    var dataDeferred = false
    /// Send RST_STREAM(NO_ERROR) once our END_STREAM is out, because the client is still
    /// sending a request we will not read (RFC 9113 §8.1).
    var resetAfterResponse = false

    // MARK: Intrusive list of live streams

    var previous: ServerStream?
    var next: ServerStream?

    init(id: Int32, allocator: ByteBufferAllocator) {
        self.id = id
        self.outbound = allocator.buffer(capacity: 0)
    }

    /// A handler for `:path`'s service/method string, for contexts and logs.
    var pathString: String { String(decoding: path, as: UTF8.self) }
}

/// The ``ServerStreamWriter`` handed to server-streaming handlers: hops to the stream's event
/// loop and forwards to its connection.
struct LoopBoundStreamWriter: ServerStreamWriter {
    let eventLoop: any EventLoop
    let target: NIOLoopBound<WriterTarget>
    /// Cleared (on the loop) when the stream finishes or closes; read from any thread.
    let active: NIOLockedValueBox<Bool>

    final class WriterTarget {
        weak var connection: GRPCServerConnectionHandler?
        let stream: ServerStream
        init(connection: GRPCServerConnectionHandler, stream: ServerStream) {
            self.connection = connection
            self.stream = stream
        }
    }

    func send(_ message: ByteBuffer) {
        run { connection, stream in connection.sendMessage(message, on: stream) }
    }

    func finish(_ status: GRPCStatus) {
        run { connection, stream in connection.finish(stream, with: status) }
    }

    var isActive: Bool { active.withLockedValue { $0 } }

    func whenQueued(atMost bytes: Int, _ body: @escaping @Sendable () -> Void) {
        let target = self.target
        let eventLoop = self.eventLoop
        let work: @Sendable () -> Void = {
            let stream = target.value.stream
            // Fired from nghttp2's callbacks: run the producer on a later loop turn, never inside them.
            let deferred: @Sendable () -> Void = { eventLoop.execute(body) }
            guard target.value.connection != nil, stream.canSend else { return deferred() }
            stream.drainWaiter = (bytes, deferred)
            stream.fireDrainWaiter()
        }
        if eventLoop.inEventLoop { work() } else { eventLoop.execute(work) }
    }

    private func run(_ body: @escaping @Sendable (GRPCServerConnectionHandler, ServerStream) -> Void) {
        let target = self.target
        let work: @Sendable () -> Void = {
            let value = target.value
            guard let connection = value.connection else { return }
            let stream = value.stream
            guard stream.canSend else { return }
            body(connection, stream)
            connection.flushOutput()
        }
        if eventLoop.inEventLoop {
            work()
        } else {
            eventLoop.execute(work)
        }
    }
}

internal import CNGHTTP2
import GRPCCore
import Glibc
import NIOCore

/// The client connection's pipeline handler: owns the nghttp2 client session.
final class GRPCClientConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Never
    typealias OutboundOut = ByteBuffer

    /// Bytes a call may queue before `send` waits for them to go out.
    static let sendWatermark = 1 << 20

    private let authority: String
    private var session: NGHTTP2Session?
    private var context: ChannelHandlerContext?
    /// The channel's allocator and loop, cached: read per call, and reaching them through the
    /// context costs retains and an existential call each time.
    private var allocator = ByteBufferAllocator()
    private var eventLoop: (any EventLoop)?
    var calls: [UInt64: ClientStream] = [:]
    private var output: ByteBuffer = ByteBufferAllocator().buffer(capacity: 16 * 1024)
    private var pendingFlush = false
    /// Inside `session.receive`: nghttp2 is calling back, so output waits for the flush after it
    /// (nghttp2 must not be asked to send from its own callbacks, and the calls a closed-loop
    /// client starts from completions then leave in one write per read).
    private var receiving = false
    /// One timer per connection, for the earliest deadline of its calls.
    private var deadlines = ClientDeadlineQueue()
    private var deadlineTimer: Scheduled<Void>?
    private var deadlineTimerAt: NIODeadline?
    private var sweepingDeadlines = false
    /// Request header blocks of calls without metadata, by path and timeout. nghttp2 copies a
    /// block when the request is submitted, so one block serves every call with the same headers.
    private var headerCache: [(path: String, timeoutNanos: Int64?, block: HeaderBlock)] = []
    private static let headerCacheSize = 8

    init(authority: String) {
        self.authority = authority
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        allocator = context.channel.allocator
        eventLoop = context.eventLoop
        if context.channel.isActive { start() }
    }

    func channelActive(context: ChannelHandlerContext) {
        start()
        context.fireChannelActive()
    }

    private func start() {
        guard session == nil else { return }
        let session = NGHTTP2Session(
            role: .client, userData: Unmanaged.passUnretained(self).toOpaque(), configure: clientCallbacks)
        self.session = session
        session.submitSettings([
            (Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), 0),
            (Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), 4 << 20),
        ])
        session.setConnectionWindow(16 << 20)
        flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(GRPCStatus(.unavailable, "connection closed"))
        session = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll(GRPCStatus(.unavailable, "connection closed"))
        session = nil
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(GRPCStatus(.unavailable, "connection error: \(error)"))
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let session else { return }
        receiving = true
        let error = bytes.withUnsafeReadableBytes { session.receive($0) }
        receiving = false
        if let error {
            failAll(GRPCStatus(.unavailable, "HTTP/2 error from server: \(error)"))
            context.close(promise: nil)
            return
        }
        flush(now: false)
        if !session.isAlive {
            failAll(GRPCStatus(.unavailable, "server closed the connection (GOAWAY)"))
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if pendingFlush {
            pendingFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    // MARK: Commands from GRPCClientConnection / GRPCClientCall (on the event loop)

    func send(_ send: ClientCallSend) {
        guard let stream = calls[send.call], !stream.completed else {
            send.promise?.fail(GRPCStatus(.cancelled, "call already finished"))
            return
        }
        enqueue(send, on: stream)
    }

    func cancel(_ key: UInt64) {
        guard let stream = calls[key], !stream.completed, let session else { return }
        if stream.id > 0 { session.resetStream(stream.id, errorCode: HTTP2ErrorCode.cancel) }
        complete(stream, failure: GRPCStatus(.cancelled, "cancelled by the client"))
        flush()
    }

    func startCall(_ request: ClientCallRequest) {
        // `session` exists exactly while the channel is active (set in `start`, cleared when inactive).
        guard let session, let eventLoop else {
            request.sink.deliver(failedResult(GRPCStatus(.unavailable, "connection is not open")))
            return
        }
        let key = request.key
        let stream = ClientStream(key: key, sink: request.sink, allocator: allocator)
        let block = requestHeaders(request)
        var provider = nghttp2_data_provider(
            source: nghttp2_data_source(ptr: Unmanaged.passUnretained(stream).toOpaque()),
            read_callback: clientReadRequestData)
        let id = nghttp2_submit_request(
            session.raw, nil, block.nva, block.count, &provider, Unmanaged.passUnretained(stream).toOpaque())
        guard id > 0 else {
            let reason = String(cString: nghttp2_strerror(id))
            request.sink.deliver(failedResult(GRPCStatus(.unavailable, "cannot start stream: \(reason)")))
            return
        }
        stream.id = id
        calls[key] = stream
        if let message = request.firstMessage {
            stream.firstMessageLength = UInt32(message.readableBytes)
            stream.prefixLeft = 5
            if message.readableBytes > 0 { stream.firstMessage = message }
        }
        stream.requestEnded = request.endRequest
        if let timeout = request.timeout {
            stream.hasDeadline = true
            addDeadline(.now() + timeout, for: stream, on: eventLoop)
        }
        flush()
    }

    /// The HEADERS block of `request`: from the cache when it has no metadata.
    private func requestHeaders(_ request: ClientCallRequest) -> HeaderBlock {
        let timeoutNanos = request.timeout?.nanoseconds
        if request.metadata.isEmpty,
            let cached = headerCache.first(where: { $0.path == request.path && $0.timeoutNanos == timeoutNanos })
        {
            return cached.block
        }
        var headers: [(String, String)] = [
            (":method", "POST"), (":scheme", "http"), (":authority", authority), (":path", request.path),
            ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", "rankd-grpc-client/1"),
        ]
        if let timeoutNanos {
            headers.append(("grpc-timeout", GRPCTimeout.format(nanoseconds: max(timeoutNanos, 1))))
        }
        headers.append(contentsOf: request.metadata.map { ($0.0.lowercased(), $0.1) })
        let block = HeaderBlock(headers)
        if request.metadata.isEmpty {
            if headerCache.count == Self.headerCacheSize { headerCache.removeFirst() }
            headerCache.append((request.path, timeoutNanos, block))
        }
        return block
    }

    // MARK: Deadlines (one timer per connection)

    private func addDeadline(_ deadline: NIODeadline, for stream: ClientStream, on eventLoop: any EventLoop) {
        deadlines.insert(deadline, stream)
        // The sweep re-arms the timer itself when it is done.
        guard !sweepingDeadlines else { return }
        if let armed = deadlineTimerAt, armed <= deadline { return }
        armDeadlineTimer(at: deadline, on: eventLoop)
    }

    private func armDeadlineTimer(at deadline: NIODeadline, on eventLoop: any EventLoop) {
        deadlineTimer?.cancel()
        deadlineTimerAt = deadline
        deadlineTimer = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: deadline) { [self] in
            sweepDeadlines(on: eventLoop)
        }
    }

    private func stopDeadlineTimer() {
        deadlineTimer?.cancel()
        deadlineTimer = nil
        deadlineTimerAt = nil
        deadlines.removeAll()
    }

    /// The timer fired: every call past its deadline is reset and fails with DEADLINE_EXCEEDED.
    private func sweepDeadlines(on eventLoop: any EventLoop) {
        deadlineTimer = nil
        deadlineTimerAt = nil
        guard let session else { return }
        let now = NIODeadline.now()
        var expired = false
        sweepingDeadlines = true
        // Completing a call may start another (and add its deadline): read the front anew each time.
        while let first = deadlines.first, first.stream.completed || first.deadline <= now {
            deadlines.removeFirst()
            guard !first.stream.completed else { continue }
            session.resetStream(first.stream.id, errorCode: HTTP2ErrorCode.cancel)
            complete(first.stream, failure: GRPCStatus(.deadlineExceeded, "deadline exceeded (client side)"))
            expired = true
        }
        sweepingDeadlines = false
        if let next = deadlines.first { armDeadlineTimer(at: next.deadline, on: eventLoop) }
        if expired { flush() }
    }

    private func enqueue(_ send: ClientCallSend, on stream: ClientStream) {
        if let message = send.message {
            GRPCMessageFramer.write(message, into: &stream.outbound)
        }
        if send.end { stream.requestEnded = true }
        if let promise = send.promise {
            if stream.unsentBytes < Self.sendWatermark {
                promise.succeed()
            } else {
                stream.drainWaiters.append(promise)
            }
        }
        if stream.dataDeferred, let session {
            stream.dataDeferred = false
            session.resumeData(stream.id)
        }
        flush()
    }

    private func flush(now: Bool = true) {
        guard !receiving, let session, let context else { return }
        output.clear()
        _ = session.drainOutput { output.writeBytes($0) }
        guard output.readableBytes > 0 else { return }
        context.write(wrapOutboundOut(output), promise: nil)
        if now { context.flush() } else { pendingFlush = true }
    }

    /// The connection is gone: every call fails and nghttp2 will not call back again.
    private func failAll(_ status: GRPCStatus) {
        stopDeadlineTimer()
        let streams = calls.values
        calls = [:]
        for stream in streams {
            complete(stream, failure: status)
        }
    }

    func complete(_ stream: ClientStream, failure: GRPCStatus? = nil) {
        guard !stream.completed else { return }
        stream.completed = true
        if stream.hasDeadline { deadlines.dropCompletedFront() }
        // The entry stays in `calls` until nghttp2 closes the stream: nghttp2 holds unretained
        // pointers to it (stream user data, data source) until then.
        for waiter in stream.drainWaiters { waiter.fail(failure ?? GRPCStatus(.cancelled, "call ended")) }
        stream.drainWaiters = []
        let status: GRPCStatus
        if let failure = stream.failure ?? failure {
            status = failure
        } else if let code = stream.grpcStatus {
            status = GRPCStatus(GRPCStatus.Code(rawValue: code) ?? .unknown, stream.grpcMessage ?? "")
        } else if stream.httpStatus != 200 && stream.httpStatus != 0 {
            status = GRPCStatus(Self.code(forHTTPStatus: stream.httpStatus), "HTTP status \(stream.httpStatus)")
        } else {
            status = GRPCStatus(.internal, "stream ended without grpc-status")
        }
        let result = GRPCCallResult(messages: stream.messages, status: status, metadata: stream.metadata)
        // The stream may outlive the call in the deadline queue: it keeps no response bytes.
        stream.messages = []
        stream.metadata = []
        stream.sink.deliver(result)
    }

    /// A result for a call that never reached the server.
    private func failedResult(_ status: GRPCStatus) -> GRPCCallResult {
        GRPCCallResult(messages: [], status: status, metadata: [])
    }

    /// The mapping from HTTP status to gRPC code in the gRPC spec (`http-grpc-status-mapping.md`).
    static func code(forHTTPStatus status: Int) -> GRPCStatus.Code {
        switch status {
        case 400: .internal
        case 401: .unauthenticated
        case 403: .permissionDenied
        case 404: .unimplemented
        case 429, 502, 503, 504: .unavailable
        default: .unknown
        }
    }
}

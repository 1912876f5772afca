internal import CNGHTTP2
import GRPCCore
import Glibc
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
    private var calls: [UInt64: ClientStream] = [:]
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

    private func complete(_ stream: ClientStream, failure: GRPCStatus? = nil) {
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

    // MARK: Callbacks

    fileprivate func header(_ stream: ClientStream, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        if Self.equal(name, ":status") {
            stream.httpStatus = Self.decimal(value) ?? 0
        } else if Self.equal(name, "grpc-status") {
            stream.grpcStatus = Self.decimal(value)
        } else if Self.equal(name, "grpc-message") {
            stream.grpcMessage = GRPCPercentEncoding.decode(value)
        } else if name.first != UInt8(ascii: ":") {
            // The one value every response has: a constant string instead of a heap copy.
            let text =
                Self.equal(value, Self.grpcContentType) ? Self.grpcContentType : String(decoding: value, as: UTF8.self)
            stream.metadata.append((String(decoding: name, as: UTF8.self), text))
        }
    }

    private static let grpcContentType = "application/grpc"

    /// Whether the header bytes are `text` (one length check and a memcmp per header).
    private static func equal(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        bytes.count == text.utf8CodeUnitCount
            && (bytes.count == 0 || memcmp(bytes.baseAddress!, text.utf8Start, bytes.count) == 0)
    }

    private static func equal(_ bytes: UnsafeRawBufferPointer, _ text: String) -> Bool {
        var text = text
        return text.withUTF8 { utf8 in
            bytes.count == utf8.count
                && (bytes.count == 0 || memcmp(bytes.baseAddress!, utf8.baseAddress!, bytes.count) == 0)
        }
    }

    /// A non-negative decimal header value (`:status`, `grpc-status`); nil if it is not one.
    private static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 9 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    fileprivate func data(_ stream: ClientStream, _ bytes: UnsafeRawBufferPointer) {
        guard stream.failure == nil else { return }
        stream.deframer.append(bytes)
        do throws(GRPCStatus) {
            while let message = try stream.deframer.next() {
                stream.messages.append(message)
            }
        } catch {
            stream.failure = GRPCStatus(.internal, "bad response framing: \(error.message)")
        }
    }

    fileprivate func closed(_ stream: ClientStream, errorCode: UInt32) {
        if stream.grpcStatus == nil && stream.failure == nil && errorCode != HTTP2ErrorCode.noError {
            let code: GRPCStatus.Code = errorCode == HTTP2ErrorCode.refusedStream ? .unavailable : .internal
            stream.failure = GRPCStatus(code, "stream reset by server (HTTP/2 error \(errorCode))")
        }
        complete(stream)
        calls.removeValue(forKey: stream.key)
    }

    fileprivate func readRequest(
        _ stream: ClientStream, into buffer: UnsafeMutablePointer<UInt8>, length: Int,
        flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        let target = UnsafeMutableRawPointer(buffer)
        var count = 0
        // The first message's prefix (flag 0, big-endian length), then the message itself.
        while stream.prefixLeft > 0 && count < length {
            let index = 5 - stream.prefixLeft
            let byte = index == 0 ? 0 : UInt8(truncatingIfNeeded: stream.firstMessageLength >> (8 * (4 - index)))
            target.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
            count += 1
            stream.prefixLeft -= 1
        }
        if count < length, var message = stream.firstMessage {
            count += Self.move(from: &message, to: target + count, limit: length - count)
            stream.firstMessage = message.readableBytes > 0 ? message : nil
        }
        if count < length {
            count += Self.move(from: &stream.outbound, to: target + count, limit: length - count)
        }
        let unsent = stream.unsentBytes
        if unsent < Self.sendWatermark, !stream.drainWaiters.isEmpty {
            for waiter in stream.drainWaiters { waiter.succeed() }
            stream.drainWaiters = []
        }
        if unsent == 0 {
            // Reuse the storage (a buffer never written to shares an empty one: leave it alone).
            if stream.outbound.readerIndex > 0 { stream.outbound.clear() }
            if stream.requestEnded {
                flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            } else if count == 0 {
                stream.dataDeferred = true
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            }
        }
        return count
    }

    /// Copies up to `limit` readable bytes of `source` to `target` and consumes them.
    private static func move(from source: inout ByteBuffer, to target: UnsafeMutableRawPointer, limit: Int) -> Int {
        let count = min(limit, source.readableBytes)
        guard count > 0 else { return 0 }
        source.withUnsafeReadableBytes { target.copyMemory(from: $0.baseAddress!, byteCount: count) }
        source.moveReaderIndex(forwardBy: count)
        return count
    }
}

private func handler(_ userData: UnsafeMutableRawPointer?) -> GRPCClientConnectionHandler? {
    userData.map { Unmanaged<GRPCClientConnectionHandler>.fromOpaque($0).takeUnretainedValue() }
}

private func stream(_ session: OpaquePointer?, _ id: Int32) -> ClientStream? {
    guard let session, let pointer = nghttp2_session_get_stream_user_data(session, id) else { return nil }
    return Unmanaged<ClientStream>.fromOpaque(pointer).takeUnretainedValue()
}

private func clientCallbacks(_ callbacks: OpaquePointer) {
    nghttp2_session_callbacks_set_on_header_callback(callbacks) {
        session, frame, name, nameLength, value, valueLength, _, userData in
        guard let frame, let name, let value, let handler = handler(userData),
            let stream = stream(session, frame.pointee.hd.stream_id)
        else { return 0 }
        handler.header(
            stream, name: UnsafeRawBufferPointer(start: name, count: nameLength),
            value: UnsafeRawBufferPointer(start: value, count: valueLength))
        return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
        session, _, streamID, data, length, userData in
        guard let data, let handler = handler(userData), let stream = stream(session, streamID) else { return 0 }
        handler.data(stream, UnsafeRawBufferPointer(start: data, count: length))
        return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { session, streamID, errorCode, userData in
        guard let handler = handler(userData), let stream = stream(session, streamID) else { return 0 }
        handler.closed(stream, errorCode: errorCode)
        return 0
    }
}

private let clientReadRequestData: nghttp2_data_source_read_callback = {
    _, _, buffer, length, flags, source, userData in
    guard let buffer, let flags, let pointer = source?.pointee.ptr, let handler = handler(userData) else {
        return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
    }
    let stream = Unmanaged<ClientStream>.fromOpaque(pointer).takeUnretainedValue()
    return handler.readRequest(stream, into: buffer, length: length, flags: flags)
}

internal import CNGHTTP2
import GRPCCore
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// One client connection: bytes from NIO go into an nghttp2 server session in memory mode,
/// frames come back out as bytes; gRPC calls are dispatched to the router's handlers on this
/// connection's event loop.
///
/// Not thread-safe: everything runs on the channel's event loop. Work a handler finishes
/// elsewhere hops back before it touches a stream.
final class GRPCServerConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Never
    typealias OutboundOut = ByteBuffer

    let router: GRPCRouter
    let configuration: GRPCServerConfiguration
    let logger: Logger
    private let connectionGate: ConnectionGate

    private var session: NGHTTP2Session?
    private var context: ChannelHandlerContext?
    private var outputBuffer: ByteBuffer
    private var pendingWrite = false
    private var liveStreams: ServerStream?
    private var openStreams = 0
    private var draining = false
    private var closing = false
    private var admitted = false
    private var readPending = false
    /// Inside `nghttp2_session_mem_recv`, whose callbacks must not make the session send.
    private var inSessionReceive = false
    private var idleTask: Scheduled<Void>?
    private var resetTokens: Double
    private var resetLimitHit = false
    private var resetTokensUpdated = NIODeadline.now()
    private var remoteAddress: SocketAddress?
    /// The verified client certificate's names (mutual TLS), handed to every call.
    private let tlsPeer: TLSPeerIdentity?

    init(
        router: GRPCRouter, configuration: GRPCServerConfiguration, logger: Logger, connectionGate: ConnectionGate,
        tlsPeer: TLSPeerIdentity? = nil
    ) {
        self.tlsPeer = tlsPeer
        self.router = router
        self.configuration = configuration
        self.logger = logger
        self.connectionGate = connectionGate
        self.outputBuffer = ByteBufferAllocator().buffer(capacity: 16 * 1024)
        self.resetTokens = Double(configuration.streamResetBurst)
    }

    // MARK: Channel lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard session == nil, !closing else { return }
        remoteAddress = context.channel.remoteAddress
        guard connectionGate.admit() else {
            logger.warning(
                "connection refused: too many connections",
                metadata: ["peer": "\(remoteAddress?.description ?? "?")", "limit": "\(configuration.maxConnections)"])
            closing = true
            context.close(promise: nil)
            return
        }
        admitted = true
        // We return flow-control credit ourselves (`dataReceived`, `released`): at once for most
        // calls, once the data is really consumed for calls that defer it.
        let session = NGHTTP2Session(
            role: .server, userData: Unmanaged.passUnretained(self).toOpaque(),
            configure: serverCallbacks, options: { nghttp2_option_set_no_auto_window_update($0, 1) })
        self.session = session
        session.submitSettings([
            (Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), UInt32(configuration.maxConcurrentStreams)),
            (Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), UInt32(configuration.initialStreamWindowSize)),
            (Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), UInt32(configuration.maxHeaderListSize)),
        ])
        session.setConnectionWindow(configuration.connectionWindowSize)
        armIdleTimer()
        flushOutput()
    }

    func channelInactive(context: ChannelHandlerContext) {
        tearDown()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        tearDown()
        self.context = nil
    }

    private func tearDown() {
        idleTask?.cancel()
        idleTask = nil
        // nghttp2_session_del does not call on_stream_close: release our streams ourselves.
        while let stream = liveStreams {
            closeStream(stream, cancelled: true)
        }
        session = nil
        if admitted {
            admitted = false
            connectionGate.release()
        }
    }

    // MARK: Input

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let session, !closing else { return }
        inSessionReceive = true
        let error = bytes.withUnsafeReadableBytes { session.receive($0) }
        inSessionReceive = false
        if let error {
            logger.debug(
                "closing connection after HTTP/2 error",
                metadata: ["peer": "\(remoteAddress?.description ?? "?")", "error": "\(error)"])
            closeAfterFlush()
            return
        }
        flushOutput(flushChannel: false)
        if !session.isAlive { closeAfterFlush() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if pendingWrite {
            pendingWrite = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    /// Back-pressure: while the client does not read our responses, stop reading its requests.
    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, readPending {
            readPending = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug(
            "connection error", metadata: ["peer": "\(remoteAddress?.description ?? "?")", "error": "\(error)"])
        closing = true
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is GracefulShutdownEvent {
            beginDraining()
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    // MARK: Output

    /// Takes every byte nghttp2 has queued and writes it to the channel (flushing unless a read
    /// cycle is in progress, in which case `channelReadComplete` flushes once for the batch).
    func flushOutput(flushChannel: Bool = true) {
        guard let session, let context else { return }
        outputBuffer.clear()
        let error = session.drainOutput { bytes in outputBuffer.writeBytes(bytes) }
        if outputBuffer.readableBytes > 0 {
            // The buffer is handed to NIO, so the next cycle starts a fresh one (copy-on-write).
            context.write(wrapOutboundOut(outputBuffer), promise: nil)
            if flushChannel { context.flush() } else { pendingWrite = true }
        }
        if let error {
            logger.error("nghttp2 send failed", metadata: ["error": "\(error)"])
            closing = true
            context.close(promise: nil)
            return
        }
        if (draining && openStreams == 0) || !session.isAlive {
            closeAfterFlush()
        }
    }

    /// Sends whatever nghttp2 still has queued (a GOAWAY, final responses) and closes once it is out.
    /// Earlier writes of this read cycle may still be unflushed: the final write is flushed with them,
    /// and its promise completes only after them, so nothing queued is lost to the close.
    private func closeAfterFlush() {
        guard !closing, let context else { return }
        closing = true
        outputBuffer.clear()
        if let session { _ = session.drainOutput { bytes in outputBuffer.writeBytes(bytes) } }
        pendingWrite = false
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(outputBuffer)).whenComplete { _ in channel.close(promise: nil) }
    }

    // MARK: Connection management

    private func beginDraining() {
        guard !draining, let session else { return }
        draining = true
        session.submitGoAway(errorCode: HTTP2ErrorCode.noError)
        flushOutput()
    }

    private func armIdleTimer() {
        idleTask?.cancel()
        guard let context, openStreams == 0 else { return }
        let timeout = configuration.idleTimeout
        idleTask = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: timeout) { [self] in
            guard openStreams == 0, session != nil else { return }
            logger.debug("closing idle connection", metadata: ["peer": "\(remoteAddress?.description ?? "?")"])
            beginDraining()
        }
    }

    /// Called for every RST_STREAM the client sends. A token bucket bounds how fast a client may
    /// make us set up and tear down streams (HTTP/2 rapid reset, CVE-2023-44487).
    fileprivate func clientResetStream() {
        let now = NIODeadline.now()
        let elapsed = Double((now - resetTokensUpdated).nanoseconds) / 1e9
        resetTokensUpdated = now
        resetTokens = min(
            Double(configuration.streamResetBurst),
            resetTokens + elapsed * Double(configuration.streamResetRefillPerSecond))
        resetTokens -= 1
        if resetTokens < 0, let session, !closing, !resetLimitHit {
            resetLimitHit = true
            logger.warning(
                "closing connection: too many stream resets (rapid reset)",
                metadata: ["peer": "\(remoteAddress?.description ?? "?")"])
            // We are inside nghttp2's frame callback: only queue the GOAWAY here. When mem_recv
            // returns, the session no longer wants to read and channelRead closes after sending it.
            session.terminate(errorCode: HTTP2ErrorCode.enhanceYourCalm)
        }
    }

    // MARK: Streams (called from the nghttp2 callbacks)

    fileprivate func beginStream(id: Int32) {
        guard let session, let context else { return }
        let stream = ServerStream(id: id, allocator: context.channel.allocator)
        nghttp2_session_set_stream_user_data(session.raw, id, Unmanaged.passRetained(stream).toOpaque())
        stream.next = liveStreams
        liveStreams?.previous = stream
        liveStreams = stream
        openStreams += 1
        idleTask?.cancel()
        idleTask = nil
    }

    fileprivate func stream(_ id: Int32) -> ServerStream? {
        guard let session, let pointer = nghttp2_session_get_stream_user_data(session.raw, id) else { return nil }
        return Unmanaged<ServerStream>.fromOpaque(pointer).takeUnretainedValue()
    }

    fileprivate func header(
        _ stream: ServerStream, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer
    ) {
        // RFC 9113 §6.5.2: a field costs its name, its value and 32 bytes of overhead.
        stream.headerListSize += name.count + value.count + 32
        guard stream.headerListSize <= configuration.maxHeaderListSize else { return }
        guard let first = name.first else { return }
        if first == UInt8(ascii: ":") {
            if name.elementsEqual(":path".utf8) {
                stream.path = Array(value)
            } else if name.elementsEqual(":method".utf8) {
                stream.method = value.elementsEqual("POST".utf8) ? .post : .other
            }
            return
        }
        switch name.count {
        case 12 where name.elementsEqual("content-type".utf8):
            // application/grpc, application/grpc+proto, application/grpc;charset=… are all gRPC.
            let prefix = "application/grpc".utf8
            stream.contentTypeIsGRPC =
                value.starts(with: prefix)
                && (value.count == prefix.count || value[prefix.count] == UInt8(ascii: "+")
                    || value[prefix.count] == UInt8(ascii: ";"))
        case 12 where name.elementsEqual("grpc-timeout".utf8):
            if let nanos = GRPCTimeout.parseNanoseconds(value) {
                stream.timeout = .nanoseconds(nanos)
            } else {
                stream.timeout = .malformed(String(decoding: value, as: UTF8.self))
            }
        case 13 where name.elementsEqual("grpc-encoding".utf8):
            if !value.elementsEqual("identity".utf8) {
                stream.unsupportedEncoding = String(decoding: value, as: UTF8.self)
            }
        case 2 where name.elementsEqual("te".utf8):
            break
        default:
            if name.starts(with: "grpc-".utf8) || name.elementsEqual("user-agent".utf8)
                || name.elementsEqual("accept-encoding".utf8)
            {
                return
            }
            stream.metadata.append(
                (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
    }

    /// The request headers are complete: validate them and route the call.
    fileprivate func headersComplete(_ stream: ServerStream, endStream: Bool) {
        guard let context else { return }
        if stream.headerListSize > configuration.maxHeaderListSize {
            return fail(
                stream,
                GRPCStatus(
                    .resourceExhausted,
                    "request header list of \(stream.headerListSize) bytes exceeds the limit of \(configuration.maxHeaderListSize) bytes"
                ))
        }
        guard stream.method == .post else {
            return respondHTTPError(stream, status: "405", message: "gRPC requires the POST method")
        }
        guard stream.contentTypeIsGRPC else {
            return respondHTTPError(
                stream, status: "415", message: "content-type must be application/grpc or application/grpc+proto")
        }
        let handler = stream.path.withUnsafeBytes { router.handler(forPath: $0) }
        guard let handler else {
            return fail(stream, GRPCStatus(.unimplemented, "unknown method \(stream.pathString)"))
        }
        if let encoding = stream.unsupportedEncoding {
            return fail(
                stream,
                GRPCStatus(
                    .unimplemented,
                    "grpc-encoding '\(encoding)' is not supported: this server accepts identity (uncompressed) messages only"
                ))
        }
        var deadline: NIODeadline?
        switch stream.timeout {
        case .none:
            break
        case .malformed(let value):
            return fail(stream, GRPCStatus(.invalidArgument, "malformed grpc-timeout header '\(value)'"))
        case .nanoseconds(let nanos):
            deadline = NIODeadline.now() + .nanoseconds(nanos)
            if nanos <= 0 {
                return fail(stream, GRPCStatus(.deadlineExceeded, "deadline exceeded before the call started"))
            }
            let id = stream.id
            stream.deadlineTask = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(
                deadline: deadline!
            ) { [self] in
                guard let stream = self.stream(id), stream.state == .receiving || stream.state == .handling else {
                    return
                }
                stream.deadlineTask = nil
                fail(stream, GRPCStatus(.deadlineExceeded, "deadline exceeded while the call was in progress"))
                flushOutput()
            }
        }
        stream.handler = handler
        let callContext = ServerCallContext(
            path: stream.pathString, deadline: deadline, metadata: stream.metadata, eventLoop: context.eventLoop,
            remoteAddress: remoteAddress, tlsPeer: tlsPeer)
        stream.context = callContext
        stream.deframer = GRPCMessageDeframer(
            maxMessageSize: configuration.maxReceiveMessageSize, allocator: context.channel.allocator)
        if case .clientStreaming(let makeCall) = handler {
            stream.clientStreamingCall = makeCall(callContext)
        }
        if endStream { requestEnded(stream) }
    }

    /// DATA payload for stream `id`: deliver it, then return its flow-control credit. The
    /// connection's always goes back at once, so one slow call cannot stall the other streams;
    /// the stream's too, unless its call holds more than `deferredConsumptionLimit` bytes of
    /// messages it has not consumed yet: then it waits for `released`, and the client, out of
    /// stream window, pauses this upload.
    fileprivate func dataReceived(streamID id: Int32, _ bytes: UnsafeRawBufferPointer) {
        guard let session else { return }
        guard let stream = stream(id) else { return session.consume(stream: id, bytes.count) }
        data(stream, bytes)
        if stream.heldBytes > configuration.deferredConsumptionLimit, stream.state == .receiving {
            session.consumeConnection(bytes.count)
            stream.withheldBytes += bytes.count
        } else {
            session.consume(stream: id, bytes.count)
        }
    }

    private func data(_ stream: ServerStream, _ bytes: UnsafeRawBufferPointer) {
        guard stream.state == .receiving, stream.deframer != nil else { return }
        stream.deframer!.append(bytes)
        do throws(GRPCStatus) {
            while let message = try stream.deframer!.next() {
                stream.requestMessageCount += 1
                if let call = stream.clientStreamingCall {
                    let wireBytes = 5 + message.readableBytes  // with its gRPC prefix
                    if let consumed = try call.receive(message) { hold(wireBytes, of: stream, until: consumed) }
                } else if stream.requestMessageCount == 1 {
                    stream.requestMessage = message
                } else {
                    throw GRPCStatus(.invalidArgument, "\(stream.pathString) expects exactly one request message")
                }
                guard stream.state == .receiving else { return }
            }
        } catch {
            fail(stream, error)
        }
    }

    /// Counts `count` bytes as held by `stream`'s call until `consumed` completes.
    private func hold(_ count: Int, of stream: ServerStream, until consumed: EventLoopFuture<Void>) {
        guard let context else { return }
        stream.heldBytes += count
        let loopBound = NIOLoopBound((self, stream), eventLoop: context.eventLoop)
        consumed.hop(to: context.eventLoop).whenComplete { _ in
            let (connection, stream) = loopBound.value
            connection.released(count, of: stream)
        }
    }

    /// The call consumed `count` held bytes: once it holds no more than the limit, the stream's
    /// withheld credit goes back to the client (nghttp2 sends WINDOW_UPDATE past half a window).
    private func released(_ count: Int, of stream: ServerStream) {
        stream.heldBytes -= count
        guard stream.withheldBytes > 0, stream.heldBytes <= configuration.deferredConsumptionLimit,
            stream.state == .receiving, !stream.requestEnded, let session
        else { return }
        session.consumeStream(stream.id, stream.withheldBytes)
        stream.withheldBytes = 0
        // A future that was already complete lands here from inside the DATA callback; then
        // `channelRead` sends the WINDOW_UPDATE when nghttp2 returns.
        if !inSessionReceive { flushOutput() }
    }

    /// The client half-closed: run the call.
    fileprivate func requestEnded(_ stream: ServerStream) {
        stream.requestEnded = true
        guard stream.state == .receiving, let handler = stream.handler, let callContext = stream.context else {
            return
        }
        if let deframer = stream.deframer, deframer.hasPartialMessage {
            return fail(stream, GRPCStatus(.invalidArgument, deframer.partialMessageDescription))
        }
        if let deadline = callContext.deadline, deadline <= .now() {
            return fail(stream, GRPCStatus(.deadlineExceeded, "deadline exceeded before the call was handled"))
        }
        stream.state = .handling
        switch handler {
        case .unary(let body):
            guard let request = takeSingleRequest(stream) else { return }
            complete(stream, with: body(callContext, request))
        case .clientStreaming:
            guard let call = stream.clientStreamingCall else { return }
            complete(stream, with: call.finish())
        case .serverStreaming(let body):
            guard let request = takeSingleRequest(stream), let context else { return }
            let active = NIOLockedValueBox(true)
            stream.writerActive = active
            let writer = LoopBoundStreamWriter(
                eventLoop: context.eventLoop,
                target: NIOLoopBound(.init(connection: self, stream: stream), eventLoop: context.eventLoop),
                active: active)
            body(callContext, request, writer)
        }
    }

    private func takeSingleRequest(_ stream: ServerStream) -> ByteBuffer? {
        guard stream.requestMessageCount == 1, let request = stream.requestMessage else {
            fail(
                stream,
                GRPCStatus(
                    .invalidArgument,
                    "\(stream.pathString) expects exactly one request message, got \(stream.requestMessageCount)"))
            return nil
        }
        stream.requestMessage = nil
        return request
    }

    private func complete(_ stream: ServerStream, with result: UnaryResult) {
        switch result {
        case .response(let message):
            sendMessage(message, on: stream)
            finish(stream, with: .ok)
        case .failure(let status):
            finish(stream, with: status)
        case .future(let future):
            let loopBound = NIOLoopBound((self, stream), eventLoop: future.eventLoop)
            future.hop(to: context!.eventLoop).whenComplete { result in
                let (connection, stream) = loopBound.value
                guard stream.state == .handling else { return }
                switch result {
                case .success(let message):
                    connection.sendMessage(message, on: stream)
                    connection.finish(stream, with: .ok)
                case .failure(let error as GRPCStatus):
                    connection.finish(stream, with: error)
                case .failure(let error):
                    connection.finish(stream, with: GRPCStatus(.internal, "handler failed: \(error)"))
                }
                connection.flushOutput()
            }
        }
    }

    // MARK: Responding

    /// Queues one response message (headers first if this is the first).
    func sendMessage(_ message: ByteBuffer, on stream: ServerStream) {
        guard let session, stream.state == .handling else { return }
        GRPCMessageFramer.write(message, into: &stream.outbound)
        if !stream.responseHeadersSent {
            stream.responseHeadersSent = true
            var provider = nghttp2_data_provider(
                source: nghttp2_data_source(ptr: Unmanaged.passUnretained(stream).toOpaque()),
                read_callback: readResponseData)
            let block = HeaderBlock.grpcResponse
            _ = nghttp2_submit_response(session.raw, stream.id, block.nva, block.count, &provider)
        } else if stream.dataDeferred {
            stream.dataDeferred = false
            session.resumeData(stream.id)
        }
    }

    /// Ends the call with `status`: trailers after the messages, or Trailers-Only if none went out.
    func finish(_ stream: ServerStream, with status: GRPCStatus) {
        guard let session, stream.state == .receiving || stream.state == .handling else { return }
        stream.state = .finished
        stream.deadlineTask?.cancel()
        stream.deadlineTask = nil
        stream.writerActive?.withLockedValue { $0 = false }
        if stream.clientStreamingCall != nil, status.code != .ok || !stream.requestEnded {
            stream.clientStreamingCall?.cancel()
        }
        stream.clientStreamingCall = nil
        if !stream.requestEnded { stream.resetAfterResponse = true }
        if stream.responseHeadersSent {
            stream.trailers = status
            if stream.dataDeferred {
                stream.dataDeferred = false
                session.resumeData(stream.id)
            }
        } else {
            let block = HeaderBlock.trailersOnly(for: status)
            _ = nghttp2_submit_response(session.raw, stream.id, block.nva, block.count, nil)
        }
    }

    private func fail(_ stream: ServerStream, _ status: GRPCStatus) {
        finish(stream, with: status)
    }

    private func respondHTTPError(_ stream: ServerStream, status: String, message: String) {
        guard let session else { return }
        stream.state = .finished
        if !stream.requestEnded { stream.resetAfterResponse = true }
        let block = HeaderBlock([
            (":status", status), ("content-type", "application/grpc"),
            ("grpc-status", String(GRPCStatus.Code.internal.rawValue)),
            ("grpc-message", String(decoding: GRPCPercentEncoding.encode(message), as: UTF8.self)),
        ])
        _ = nghttp2_submit_response(session.raw, stream.id, block.nva, block.count, nil)
    }

    /// nghttp2 asks for response body bytes.
    fileprivate func readData(
        _ stream: ServerStream, into buffer: UnsafeMutablePointer<UInt8>, length: Int,
        flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        let count = min(length, stream.outbound.readableBytes)
        if count > 0 {
            stream.outbound.withUnsafeReadableBytes { source in
                UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress!, byteCount: count)
            }
            stream.outbound.moveReaderIndex(forwardBy: count)
        }
        if stream.outbound.readableBytes == 0 {
            stream.outbound.clear()
            if let status = stream.trailers, let session {
                // grpcio rejects DATA carrying END_STREAM: end the body here and let the trailers
                // HEADERS frame carry END_STREAM.
                flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                let block = HeaderBlock.trailers(for: status)
                _ = nghttp2_submit_trailer(session.raw, stream.id, block.nva, block.count)
            } else if count == 0 {
                stream.dataDeferred = true
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            }
        }
        return count
    }

    fileprivate func frameSent(streamID: Int32, endStream: Bool) {
        guard endStream, let stream = stream(streamID), stream.resetAfterResponse, let session else { return }
        stream.resetAfterResponse = false
        session.resetStream(streamID, errorCode: HTTP2ErrorCode.noError)
    }

    /// nghttp2 closed the stream (either side, any reason): drop our references to it.
    fileprivate func closeStream(_ stream: ServerStream, cancelled: Bool) {
        stream.deadlineTask?.cancel()
        stream.deadlineTask = nil
        stream.writerActive?.withLockedValue { $0 = false }
        if stream.state != .finished, let call = stream.clientStreamingCall {
            call.cancel()
        }
        stream.clientStreamingCall = nil
        stream.state = .closed
        if let session { nghttp2_session_set_stream_user_data(session.raw, stream.id, nil) }
        if liveStreams === stream { liveStreams = stream.next }
        stream.previous?.next = stream.next
        stream.next?.previous = stream.previous
        stream.previous = nil
        stream.next = nil
        openStreams -= 1
        Unmanaged.passUnretained(stream).release()
        if openStreams == 0, !closing { armIdleTimer() }
    }
}

/// Sent down every connection's pipeline to start a graceful shutdown.
struct GracefulShutdownEvent: Sendable {}

/// Counts admitted connections against `maxConnections`.
final class ConnectionGate: Sendable {
    private let limit: Int
    private let count = NIOLockedValueBox(0)

    init(limit: Int) { self.limit = limit }

    func admit() -> Bool {
        count.withLockedValue { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func release() { count.withLockedValue { $0 -= 1 } }

    var current: Int { count.withLockedValue { $0 } }
}

// MARK: - nghttp2 callbacks
//
// File-private C functions: each checks its pointers, recovers the connection from user_data and
// never lets a Swift error cross into C. Returning 0 means "carry on".

private func connection(_ userData: UnsafeMutableRawPointer?) -> GRPCServerConnectionHandler? {
    userData.map { Unmanaged<GRPCServerConnectionHandler>.fromOpaque($0).takeUnretainedValue() }
}

private func serverCallbacks(_ callbacks: OpaquePointer) {
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
        guard let frame, let connection = connection(userData) else { return 0 }
        if frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
            frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
        {
            connection.beginStream(id: frame.pointee.hd.stream_id)
        }
        return 0
    }
    nghttp2_session_callbacks_set_on_header_callback(callbacks) {
        _, frame, name, nameLength, value, valueLength, _, userData in
        guard let frame, let name, let value, let connection = connection(userData),
            frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
            let stream = connection.stream(frame.pointee.hd.stream_id)
        else { return 0 }
        connection.header(
            stream, name: UnsafeRawBufferPointer(start: name, count: nameLength),
            value: UnsafeRawBufferPointer(start: value, count: valueLength))
        return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
        guard let frame, let connection = connection(userData) else { return 0 }
        let header = frame.pointee.hd
        let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(header.type) {
        case NGHTTP2_HEADERS.rawValue:
            guard let stream = connection.stream(header.stream_id) else { break }
            if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
                connection.headersComplete(stream, endStream: endStream)
            } else if endStream {
                // Trailers from the client end the request.
                connection.requestEnded(stream)
            }
        case NGHTTP2_DATA.rawValue:
            if endStream, let stream = connection.stream(header.stream_id) {
                connection.requestEnded(stream)
            }
        case NGHTTP2_RST_STREAM.rawValue:
            connection.clientResetStream()
        default:
            break
        }
        return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
        _, _, streamID, data, length, userData in
        guard let data, let connection = connection(userData) else { return 0 }
        connection.dataReceived(streamID: streamID, UnsafeRawBufferPointer(start: data, count: length))
        return 0
    }
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
        guard let frame, let connection = connection(userData) else { return 0 }
        let header = frame.pointee.hd
        let type = UInt32(header.type)
        if type == NGHTTP2_HEADERS.rawValue || type == NGHTTP2_DATA.rawValue {
            connection.frameSent(
                streamID: header.stream_id, endStream: header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0)
        }
        return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, _, userData in
        guard let connection = connection(userData), let stream = connection.stream(streamID) else { return 0 }
        connection.closeStream(stream, cancelled: false)
        return 0
    }
}

private let readResponseData: nghttp2_data_source_read_callback = {
    _, _, buffer, length, flags, source, userData in
    guard let buffer, let flags, let pointer = source?.pointee.ptr, let connection = connection(userData) else {
        return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
    }
    let stream = Unmanaged<ServerStream>.fromOpaque(pointer).takeUnretainedValue()
    return connection.readData(stream, into: buffer, length: length, flags: flags)
}

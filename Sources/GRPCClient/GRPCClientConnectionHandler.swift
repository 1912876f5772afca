internal import CNGHTTP2
import GRPCServer
import NIOCore

/// Client side of one call's HTTP/2 stream. Lives on the connection's event loop.
final class ClientStream {
    let key: UInt64
    let promise: EventLoopPromise<GRPCCallResult>
    var id: Int32 = -1
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
    var deadlineTask: Scheduled<Void>?
    var completed = false

    init(key: UInt64, promise: EventLoopPromise<GRPCCallResult>, allocator: ByteBufferAllocator) {
        self.key = key
        self.promise = promise
        self.outbound = allocator.buffer(capacity: 0)
        self.deframer = GRPCMessageDeframer(maxMessageSize: Int(Int32.max), allocator: allocator)
    }
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
    private var calls: [UInt64: ClientStream] = [:]
    private var output: ByteBuffer = ByteBufferAllocator().buffer(capacity: 16 * 1024)
    private var pendingFlush = false

    init(authority: String) {
        self.authority = authority
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
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
        if let error = bytes.withUnsafeReadableBytes({ session.receive($0) }) {
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
        guard let session, let context, context.channel.isActive else {
            request.promise.succeed(failedResult(GRPCStatus(.unavailable, "connection is not open")))
            return
        }
        let key = request.key
        let stream = ClientStream(key: key, promise: request.promise, allocator: context.channel.allocator)
        var headers: [(String, String)] = [
            (":method", "POST"), (":scheme", "http"), (":authority", authority), (":path", request.path),
            ("content-type", "application/grpc"), ("te", "trailers"), ("user-agent", "rankd-grpc-client/1"),
        ]
        if let timeout = request.timeout {
            headers.append(("grpc-timeout", GRPCTimeout.format(nanoseconds: max(timeout.nanoseconds, 1))))
        }
        headers.append(contentsOf: request.metadata.map { ($0.0.lowercased(), $0.1) })
        let block = HeaderBlock(headers)
        var provider = nghttp2_data_provider(
            source: nghttp2_data_source(ptr: Unmanaged.passUnretained(stream).toOpaque()),
            read_callback: clientReadRequestData)
        let id = nghttp2_submit_request(
            session.raw, nil, block.nva, block.count, &provider, Unmanaged.passUnretained(stream).toOpaque())
        guard id > 0 else {
            let reason = String(cString: nghttp2_strerror(id))
            request.promise.succeed(failedResult(GRPCStatus(.unavailable, "cannot start stream: \(reason)")))
            return
        }
        stream.id = id
        calls[key] = stream
        if let message = request.firstMessage {
            GRPCMessageFramer.write(message, into: &stream.outbound)
        }
        stream.requestEnded = request.endRequest
        if let timeout = request.timeout {
            stream.deadlineTask = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: timeout) {
                [self] in
                guard !stream.completed, let session = self.session else { return }
                session.resetStream(stream.id, errorCode: HTTP2ErrorCode.cancel)
                complete(stream, failure: GRPCStatus(.deadlineExceeded, "deadline exceeded (client side)"))
                flush()
            }
        }
        flush()
    }

    private func enqueue(_ send: ClientCallSend, on stream: ClientStream) {
        if let message = send.message {
            GRPCMessageFramer.write(message, into: &stream.outbound)
        }
        if send.end { stream.requestEnded = true }
        if let promise = send.promise {
            if stream.outbound.readableBytes < Self.sendWatermark {
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
        guard let session, let context else { return }
        output.clear()
        _ = session.drainOutput { output.writeBytes($0) }
        guard output.readableBytes > 0 else { return }
        context.write(wrapOutboundOut(output), promise: nil)
        if now { context.flush() } else { pendingFlush = true }
    }

    /// The connection is gone: every call fails and nghttp2 will not call back again.
    private func failAll(_ status: GRPCStatus) {
        let streams = calls.values
        calls = [:]
        for stream in streams {
            complete(stream, failure: status)
        }
    }

    private func complete(_ stream: ClientStream, failure: GRPCStatus? = nil) {
        guard !stream.completed else { return }
        stream.completed = true
        stream.deadlineTask?.cancel()
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
        stream.promise.succeed(GRPCCallResult(messages: stream.messages, status: status, metadata: stream.metadata))
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
        if name.elementsEqual(":status".utf8) {
            stream.httpStatus = Int(String(decoding: value, as: UTF8.self)) ?? 0
        } else if name.elementsEqual("grpc-status".utf8) {
            stream.grpcStatus = Int(String(decoding: value, as: UTF8.self))
        } else if name.elementsEqual("grpc-message".utf8) {
            stream.grpcMessage = GRPCPercentEncoding.decode(value)
        } else if name.first != UInt8(ascii: ":") {
            stream.metadata.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
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
        let count = min(length, stream.outbound.readableBytes)
        if count > 0 {
            stream.outbound.withUnsafeReadableBytes { source in
                UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress!, byteCount: count)
            }
            stream.outbound.moveReaderIndex(forwardBy: count)
        }
        if stream.outbound.readableBytes < Self.sendWatermark, !stream.drainWaiters.isEmpty {
            for waiter in stream.drainWaiters { waiter.succeed() }
            stream.drainWaiters = []
        }
        if stream.outbound.readableBytes == 0 {
            stream.outbound.clear()
            if stream.requestEnded {
                flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            } else if count == 0 {
                stream.dataDeferred = true
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            }
        }
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

internal import CNGHTTP2
import GRPCCore
import NIOConcurrencyHelpers
import NIOCore

/// The request side of a call, driven by the nghttp2 callbacks: a stream opens, its headers are
/// recorded and validated, the call is routed, DATA is deframed (with deferred flow-control
/// credit for calls that consume slowly), and the call runs when the client half-closes.
extension GRPCServerConnectionHandler {
    func beginStream(id: Int32) {
        guard let session, let context else { return }
        let stream = ServerStream(id: id, allocator: context.channel.allocator)
        stream.began = context.eventLoop.now
        nghttp2_session_set_stream_user_data(session.raw, id, Unmanaged.passRetained(stream).toOpaque())
        stream.next = liveStreams
        liveStreams?.previous = stream
        liveStreams = stream
        openStreams += 1
        metrics?.streamOpened()
        idleSince = nil
    }

    func stream(_ id: Int32) -> ServerStream? {
        guard let session, let pointer = nghttp2_session_get_stream_user_data(session.raw, id) else { return nil }
        return Unmanaged<ServerStream>.fromOpaque(pointer).takeUnretainedValue()
    }

    func header(
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
    func headersComplete(_ stream: ServerStream, endStream: Bool) {
        stream.headersReceived = true
        guard let context else { return }
        let route = stream.path.withUnsafeBytes { router.route(forPath: $0) }
        if let metrics {
            stream.startedAt = .now()
            stream.routeIndex = route?.index ?? metrics.unknownRoute
        }
        if stream.headerListSize > configuration.maxHeaderListSize {
            metrics?.rejectedTooLarge()
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
        guard let handler = route?.handler else {
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
        } else if case .bidirectionalStreaming(let makeCall) = handler {
            stream.bidirectionalCall = makeCall(callContext, makeWriter(for: stream, context: context))
        }
        if endStream { requestEnded(stream) }
    }

    /// DATA payload for stream `id`: deliver it, then return its flow-control credit. The
    /// connection's always goes back at once, so one slow call cannot stall the other streams;
    /// the stream's too, unless its call holds more than `deferredConsumptionLimit` bytes of
    /// messages it has not consumed yet: then it waits for `released`, and the client, out of
    /// stream window, pauses this upload.
    func dataReceived(streamID id: Int32, _ bytes: UnsafeRawBufferPointer) {
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

    func data(_ stream: ServerStream, _ bytes: UnsafeRawBufferPointer) {
        guard stream.state == .receiving, stream.deframer != nil else { return }
        stream.deframer!.append(bytes)
        do throws(GRPCStatus) {
            while let message = try stream.deframer!.next() {
                stream.requestMessageCount += 1
                if let call = stream.clientStreamingCall {
                    let wireBytes = 5 + message.readableBytes  // with its gRPC prefix
                    if let consumed = try call.receive(message) { hold(wireBytes, of: stream, until: consumed) }
                } else if let call = stream.bidirectionalCall {
                    try call.receive(message)
                } else if stream.requestMessageCount == 1 {
                    stream.requestMessage = message
                } else {
                    throw GRPCStatus(.invalidArgument, "\(stream.pathString) expects exactly one request message")
                }
                guard stream.state == .receiving else { return }
            }
        } catch {
            if error.code == .resourceExhausted { metrics?.rejectedTooLarge() }
            fail(stream, error)
        }
    }

    /// Counts `count` bytes as held by `stream`'s call until `consumed` completes.
    func hold(_ count: Int, of stream: ServerStream, until consumed: EventLoopFuture<Void>) {
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
    func released(_ count: Int, of stream: ServerStream) {
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
    func requestEnded(_ stream: ServerStream) {
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
            body(callContext, request, makeWriter(for: stream, context: context))
        case .bidirectionalStreaming:
            stream.bidirectionalCall?.requestEnded()
        }
    }

    /// The writer a streaming handler answers through; it goes inactive when the stream ends.
    func makeWriter(for stream: ServerStream, context: ChannelHandlerContext) -> LoopBoundStreamWriter {
        let active = NIOLockedValueBox(true)
        stream.writerActive = active
        return LoopBoundStreamWriter(
            eventLoop: context.eventLoop,
            target: NIOLoopBound(.init(connection: self, stream: stream), eventLoop: context.eventLoop),
            active: active)
    }

    func takeSingleRequest(_ stream: ServerStream) -> ByteBuffer? {
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

    func complete(_ stream: ServerStream, with result: UnaryResult) {
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
}

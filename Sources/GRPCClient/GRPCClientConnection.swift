internal import CNGHTTP2
public import GRPCCore
public import GRPCTLS
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix
import NIOSSL

/// The outcome of a call: the response messages and the final status.
public struct GRPCCallResult: Sendable {
    /// Response messages in order (one for a successful unary call).
    public var messages: [ByteBuffer]
    /// The status from `grpc-status`/`grpc-message` (or derived from HTTP status / stream reset).
    public var status: GRPCStatus
    /// Response headers and trailers other than pseudo-headers, lower-case.
    public var metadata: [(name: String, value: String)]

    /// The single response of a unary call, or the failure status.
    public func unaryResponse() throws(GRPCStatus) -> ByteBuffer {
        guard status.code == .ok else { throw status }
        guard messages.count == 1, let message = messages.first else {
            throw GRPCStatus(.internal, "expected one response message, got \(messages.count)")
        }
        return message
    }
}

/// One HTTP/2 connection to a gRPC server, many concurrent calls over it (nghttp2 client
/// session in memory mode, SwiftNIO for the socket). Used by rankctl, LoadTests and tests.
///
/// Thread-safe: calls may start from any thread; the work hops to the connection's event loop.
public final class GRPCClientConnection: Sendable {
    private let channel: any Channel
    private let handler: NIOLoopBound<GRPCClientConnectionHandler>
    /// Call ids are never reused (object identities are, once the caller drops a call).
    private let nextCallID = NIOLockedValueBox<UInt64>(0)

    /// The event loop that owns the connection.
    public var eventLoop: any EventLoop { channel.eventLoop }

    private init(channel: any Channel, handler: NIOLoopBound<GRPCClientConnectionHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects to `host:port` and starts the HTTP/2 session (its preface goes out with the first
    /// write). With `tls`, returns once the handshake is done and the server's first HTTP/2 bytes
    /// arrived, so a refused client certificate fails here, not on the first call.
    ///
    /// - Parameters:
    ///   - connectTimeout: bounds the TCP connect and, with TLS, the handshake as well.
    ///   - tls: `nil` for cleartext HTTP/2 (h2c); see ``ClientTLSCredentials`` for what is checked.
    /// - Throws: the connect error (refused, unreachable, unknown host) or a ``ClientTLSError``.
    public static func connect(
        host: String, port: Int, group: any EventLoopGroup, connectTimeout: TimeAmount = .seconds(5),
        tls: ClientTLSCredentials? = nil
    ) async throws -> GRPCClientConnection {
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let created = NIOLockedValueBox<NIOLoopBound<GRPCClientConnectionHandler>?>(nil)
        let handshake = NIOLockedValueBox<EventLoopFuture<Void>?>(nil)
        // SNI carries DNS names only; an IP address is checked against the certificate's IP SANs.
        let serverHostname = tls?.serverName ?? ((try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil)
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        let promise = channel.eventLoop.makePromise(of: Void.self)
                        handshake.withLockedValue { $0 = promise.futureResult }
                        try sync.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: serverHostname))
                        try sync.addHandler(ClientTLSHandshakeHandler(ready: promise, timeout: connectTimeout))
                    }
                    let handler = GRPCClientConnectionHandler(authority: authority)
                    try sync.addHandler(handler)
                    created.withLockedValue { $0 = NIOLoopBound(handler, eventLoop: channel.eventLoop) }
                }
            }
            .connect(host: host, port: port)
            .get()
        if let handshake = handshake.withLockedValue({ $0 }) {
            do {
                try await handshake.get()
            } catch {
                try? await channel.close()
                throw error
            }
        }
        return GRPCClientConnection(channel: channel, handler: created.withLockedValue { $0! })
    }

    /// Whether the connection is still open.
    public var isActive: Bool { channel.isActive }

    /// Starts a call. `messages` are sent and the request half-closed if `endRequest` is true;
    /// otherwise use the returned ``GRPCClientCall`` to send more.
    public func startCall(
        path: String, metadata: [(String, String)] = [], timeout: TimeAmount? = nil
    ) -> GRPCClientCall {
        let promise = channel.eventLoop.makePromise(of: GRPCCallResult.self)
        let request = ClientCallRequest(
            path: path, metadata: metadata, timeout: timeout, sink: .promise(promise), key: makeCallID(),
            firstMessage: nil, endRequest: false)
        submit(request)
        return GRPCClientCall(id: request.key, handler: handler, result: promise.futureResult)
    }

    /// A unary call: one request, the full result (never throws; failures are in `status`).
    public func unary(
        path: String, request: ByteBuffer, metadata: [(String, String)] = [], timeout: TimeAmount? = nil
    ) -> EventLoopFuture<GRPCCallResult> {
        let promise = channel.eventLoop.makePromise(of: GRPCCallResult.self)
        submit(
            ClientCallRequest(
                path: path, metadata: metadata, timeout: timeout, sink: .promise(promise), key: makeCallID(),
                firstMessage: request, endRequest: true))
        return promise.futureResult
    }

    /// A unary call whose result is handed to `onResult` on the connection's event loop, with no
    /// promise or future in between: for callers that start many calls per second (LoadTests).
    /// Pass the same closure to every call to allocate nothing for it per call. `onResult` runs
    /// exactly once, also when the connection fails (then possibly before this method returns,
    /// when called on the event loop); it may start the next call.
    public func unary(
        path: String, request: ByteBuffer, metadata: [(String, String)] = [], timeout: TimeAmount? = nil,
        onResult: @escaping @Sendable (GRPCCallResult) -> Void
    ) {
        submit(
            ClientCallRequest(
                path: path, metadata: metadata, timeout: timeout, sink: .callback(onResult), key: makeCallID(),
                firstMessage: request, endRequest: true))
    }

    private func makeCallID() -> UInt64 {
        nextCallID.withLockedValue { id in
            id += 1
            return id
        }
    }

    /// Hands `request` to the handler. HEADERS, the first message and END_STREAM then leave in one
    /// write (one hop to the loop, one flush).
    private func submit(_ request: ClientCallRequest) {
        if handler.eventLoop.inEventLoop {
            // No closure on the loop itself (LoadTests' closed loop starts each call from the
            // previous one's completion).
            handler.value.startCall(request)
        } else {
            handler.execute { $0.startCall(request) }
        }
    }

    /// A unary call that returns the response message or throws the failure status.
    public func unaryResponse(
        path: String, request: ByteBuffer, metadata: [(String, String)] = [], timeout: TimeAmount? = nil
    ) async throws(GRPCStatus) -> ByteBuffer {
        let result: GRPCCallResult
        do {
            result = try await unary(path: path, request: request, metadata: metadata, timeout: timeout).get()
        } catch {
            throw GRPCStatus(.unavailable, "call failed: \(error)")
        }
        return try result.unaryResponse()
    }

    /// Closes the connection; calls in flight fail with `UNAVAILABLE`.
    public func close() async {
        try? await channel.close()
    }
}

/// A call in progress: send request messages (flow-controlled), then await the result.
public final class GRPCClientCall: Sendable {
    private let id: UInt64
    private let handler: NIOLoopBound<GRPCClientConnectionHandler>
    /// Completes when the call ends, with the response messages and status. Never fails: a call
    /// that could not reach the server has an `UNAVAILABLE` status.
    public let result: EventLoopFuture<GRPCCallResult>

    init(id: UInt64, handler: NIOLoopBound<GRPCClientConnectionHandler>, result: EventLoopFuture<GRPCCallResult>) {
        self.id = id
        self.handler = handler
        self.result = result
    }

    /// Queues `message`; the returned future completes when the call can take more without
    /// buffering past its watermark (back-pressure for large uploads).
    @discardableResult
    public func send(_ message: ByteBuffer, endRequest: Bool = false) -> EventLoopFuture<Void> {
        let promise = result.eventLoop.makePromise(of: Void.self)
        let send = ClientCallSend(call: id, message: message, end: endRequest, promise: promise)
        handler.execute { $0.send(send) }
        return promise.futureResult
    }

    /// Half-closes the request (no more messages).
    public func finishRequest() {
        let send = ClientCallSend(call: id, message: nil, end: true, promise: nil)
        handler.execute { $0.send(send) }
    }

    /// Cancels the call (RST_STREAM CANCEL); the result fails with `CANCELLED`.
    public func cancel() {
        let id = self.id
        handler.execute { $0.cancel(id) }
    }
}

struct ClientCallRequest: @unchecked Sendable {
    // Metadata tuples are not Sendable as a type, but they are plain strings.
    let path: String
    let metadata: [(String, String)]
    let timeout: TimeAmount?
    let sink: ClientCallSink
    let key: UInt64
    let firstMessage: ByteBuffer?
    let endRequest: Bool
}

/// Where a call's result goes: the promise behind the future API, or a callback.
enum ClientCallSink: Sendable {
    case promise(EventLoopPromise<GRPCCallResult>)
    case callback(@Sendable (GRPCCallResult) -> Void)

    func deliver(_ result: GRPCCallResult) {
        switch self {
        case .promise(let promise): promise.succeed(result)
        case .callback(let callback): callback(result)
        }
    }
}

struct ClientCallSend: Sendable {
    let call: UInt64
    let message: ByteBuffer?
    let end: Bool
    let promise: EventLoopPromise<Void>?
}

extension NIOLoopBound {
    /// Runs `body` with the value on its event loop (at once when already there).
    func execute(_ body: @escaping @Sendable (Value) -> Void) {
        if eventLoop.inEventLoop {
            body(value)
        } else {
            eventLoop.execute { body(self.value) }
        }
    }
}

public import GRPCCore
import Glibc
public import NIOCore

/// What a handler knows about its call. Created per call on the connection's event loop.
public struct ServerCallContext: Sendable {
    /// The full method path, e.g. `/ranking.v1.Ranker/Rank`.
    public let path: String
    /// When the caller gives up (from `grpc-timeout`), or `nil` for no deadline.
    public let deadline: NIODeadline?
    /// Custom request metadata (lower-case names), e.g. `authorization`. Reserved gRPC and
    /// HTTP/2 headers are not included.
    public let metadata: [(name: String, value: String)]
    /// The event loop that owns the call's connection; handlers run on it.
    public let eventLoop: any EventLoop
    /// The peer's address, for logs.
    public let remoteAddress: SocketAddress?
    /// The names in the client's verified certificate under mutual TLS; `nil` otherwise.
    public let tlsPeer: TLSPeerIdentity?

    /// Creates a context (the server does this; public for handler unit tests).
    public init(
        path: String, deadline: NIODeadline?, metadata: [(name: String, value: String)], eventLoop: any EventLoop,
        remoteAddress: SocketAddress? = nil, tlsPeer: TLSPeerIdentity? = nil
    ) {
        self.path = path
        self.deadline = deadline
        self.metadata = metadata
        self.eventLoop = eventLoop
        self.remoteAddress = remoteAddress
        self.tlsPeer = tlsPeer
    }

    /// The first value of a metadata entry, by lower-case name.
    public func metadataValue(_ name: String) -> String? {
        metadata.first { $0.name == name }?.value
    }

    /// Time left before the deadline (`nil` without a deadline; negative once expired).
    public func remainingTime(now: NIODeadline = .now()) -> TimeAmount? {
        deadline.map { $0 - now }
    }
}

/// The outcome of a unary (or client-streaming) call: a response message now, a status now, or
/// a future for work done elsewhere (disk I/O, a thread pool). A future failing with a
/// ``GRPCStatus`` sends that status; any other error is `INTERNAL`.
public enum UnaryResult: Sendable {
    case response(ByteBuffer)
    case failure(GRPCStatus)
    case future(EventLoopFuture<ByteBuffer>)
}

/// Receives the messages of one client-streaming call, on the connection's event loop.
///
/// Flow control: the server returns a message's bytes to the client's HTTP/2 windows once the
/// call has *consumed* it. A call that consumes in `receive` returns `nil`. A call that hands the
/// message to slower work (a disk write) returns a future instead, so a slow consumer throttles
/// its client through the stream window rather than by blocking the event loop or buffering
/// without bound: while the call holds more than
/// ``GRPCServerConfiguration/deferredConsumptionLimit`` bytes of such messages, the stream's
/// window is not replenished (the connection's is, so other streams on it keep flowing).
public protocol ClientStreamingCall: AnyObject {
    /// One request message. Throwing ends the call with that status; later messages are dropped.
    ///
    /// - Returns: `nil` when the call is done with `message`, or a future (of any event loop) that
    ///   completes, with success or failure alike, once it is. The server does not read its
    ///   error: report a failure through a later `receive` or `finish`.
    func receive(_ message: ByteBuffer) throws(GRPCStatus) -> EventLoopFuture<Void>?
    /// The client half-closed: produce the single response.
    func finish() -> UnaryResult
    /// The call ended early (client reset, deadline, connection loss): release what it holds.
    func cancel()
}

/// Sends the messages of a server-streaming call. Usable from any thread; calls after `finish`
/// or after the stream was closed by the client are ignored.
public protocol ServerStreamWriter: Sendable {
    /// Queues one response message.
    func send(_ message: ByteBuffer)
    /// Ends the call with `status` (sent in the trailers).
    func finish(_ status: GRPCStatus)
    /// Whether the client is still there (false after a reset, deadline or disconnect).
    var isActive: Bool { get }
    /// Calls `body` (on the stream's event loop) once at most `bytes` response bytes wait in the
    /// stream's queue — at once if that is already so — or once the stream has ended (`isActive`
    /// is then false). The queue drains only as fast as HTTP/2 flow control lets nghttp2 send, i.e.
    /// as the client reads, so a producer that sends its next message from here holds at most
    /// `bytes` plus one message per call, however slow the reader. One waiter per stream: a second
    /// call replaces the first.
    func whenQueued(atMost bytes: Int, _ body: @escaping @Sendable () -> Void)
}

/// Receives the messages of one bidirectional-streaming call, on the connection's event loop, and
/// answers through the ``ServerStreamWriter`` it was created with: responses may go out while
/// requests still arrive (gRPC server reflection answers each request as it comes).
public protocol BidirectionalStreamingCall: AnyObject {
    /// One request message. Throwing ends the call with that status; later messages are dropped.
    func receive(_ message: ByteBuffer) throws(GRPCStatus)
    /// The client half-closed: end the call through the writer (`finish`), now or later.
    func requestEnded()
    /// The call ended early (client reset, deadline, connection loss): release what it holds.
    func cancel()
}

/// How a method is served.
public enum MethodHandler: Sendable {
    /// One request, one response.
    case unary(@Sendable (ServerCallContext, ByteBuffer) -> UnaryResult)
    /// Many requests, one response: the closure creates the per-call receiver.
    case clientStreaming(@Sendable (ServerCallContext) -> any ClientStreamingCall)
    /// One request, many responses.
    case serverStreaming(@Sendable (ServerCallContext, ByteBuffer, any ServerStreamWriter) -> Void)
    /// Many requests, many responses, interleaved: the closure creates the per-call receiver.
    case bidirectionalStreaming(@Sendable (ServerCallContext, any ServerStreamWriter) -> any BidirectionalStreamingCall)
}

/// Maps full method paths (`/package.Service/Method`) to handlers. Immutable once the server
/// starts, so lookups need no lock.
public struct GRPCRouter: Sendable {
    private var routes: [(path: [UInt8], handler: MethodHandler)] = []

    /// An empty router.
    public init() {}

    /// Registers `handler` for `/service/method`. Registering a path twice is a programming error.
    public mutating func register(service: String, method: String, _ handler: MethodHandler) {
        let path = Array("/\(service)/\(method)".utf8)
        precondition(!routes.contains { $0.path == path }, "duplicate route /\(service)/\(method)")
        routes.append((path, handler))
    }

    /// The handler registered for `/service/method`, for tests and in-process benchmarks that
    /// call a handler without a connection.
    public func handler(service: String, method: String) -> MethodHandler? {
        Array("/\(service)/\(method)".utf8).withUnsafeBytes { handler(forPath: $0) }
    }

    /// The registered paths, for logs.
    public var paths: [String] { routes.map { String(decoding: $0.path, as: UTF8.self) } }

    /// The services that have at least one method registered.
    public var serviceNames: Set<String> {
        Set(paths.compactMap { $0.split(separator: "/").first.map(String.init) })
    }

    /// Finds the handler for a raw `:path` without allocating: a linear scan with a byte
    /// compare, faster than hashing a heap string for the handful of methods a server has.
    func handler(forPath path: UnsafeRawBufferPointer) -> MethodHandler? {
        route(forPath: path)?.handler
    }

    /// ``handler(forPath:)`` with the route's index in ``paths`` (for per-method metrics).
    func route(forPath path: UnsafeRawBufferPointer) -> (index: Int, handler: MethodHandler)? {
        for (index, route) in routes.enumerated() where route.path.count == path.count {
            let equal = route.path.withUnsafeBytes { candidate in
                memcmp(candidate.baseAddress!, path.baseAddress!, path.count) == 0
            }
            if equal { return (index, route.handler) }
        }
        return nil
    }
}

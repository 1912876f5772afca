public import NIOCore
import NIOHTTP1
import NIOPosix

/// The `--metrics-listen` endpoint: HTTP/1.1, `GET /metrics` answers the Prometheus text
/// exposition, anything else 404 (or 405 for other methods on /metrics).
///
/// Runs on its own event loop group (one thread), so rendering a large exposition never delays a
/// Rank call on the gRPC loops.
public final class MetricsHTTPServer: Sendable {
    private let channel: any Channel
    private let group: MultiThreadedEventLoopGroup

    /// The bound address (with the real port when started on port 0).
    public var localAddress: SocketAddress? { channel.localAddress }

    private init(channel: any Channel, group: MultiThreadedEventLoopGroup) {
        self.channel = channel
        self.group = group
    }

    /// Binds `host:port` and serves `render()` at `/metrics`.
    ///
    /// - Throws: the bind error (address in use, permission denied, unknown host).
    public static func start(
        host: String, port: Int, render: @escaping @Sendable () -> [UInt8]
    ) async throws -> MetricsHTTPServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(MetricsRequestHandler(render: render))
                    }
                }
                .bind(host: host, port: port)
                .get()
            return MetricsHTTPServer(channel: channel, group: group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Stops listening and releases the thread.
    public func close() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// One HTTP/1.1 connection of the metrics endpoint.
private final class MetricsRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let render: @Sendable () -> [UInt8]
    private var head: HTTPRequestHead?

    init(render: @escaping @Sendable () -> [UInt8]) { self.render = render }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        let status: HTTPResponseStatus
        let contentType: String
        var body = context.channel.allocator.buffer(capacity: 0)
        if path != "/metrics" {
            status = .notFound
            contentType = "text/plain; charset=utf-8"
            body.writeString("not found: the metrics are at /metrics\n")
        } else if head.method != .GET && head.method != .HEAD {
            status = .methodNotAllowed
            contentType = "text/plain; charset=utf-8"
            body.writeString("/metrics answers GET\n")
        } else {
            status = .ok
            contentType = "text/plain; version=0.0.4; charset=utf-8"
            if head.method == .GET { body.writeBytes(render()) }
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(body.readableBytes))
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil)
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

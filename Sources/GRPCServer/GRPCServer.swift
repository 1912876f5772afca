public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix
import NIOSSL

/// A gRPC server: SwiftNIO accepts connections and moves bytes, one nghttp2 session per
/// connection speaks HTTP/2, and calls are dispatched to a ``GRPCRouter``'s handlers on the
/// event loop that received them.
///
/// Generic: it knows nothing about what its methods do.
///
/// With ``GRPCServerConfiguration/tls`` set, every connection speaks TLS (ALPN `h2`, TLS 1.2+,
/// mutual TLS when the credentials name client CAs); otherwise HTTP/2 in cleartext (h2c).
///
/// ```swift
/// let server = try await GRPCServer.start(host: "127.0.0.1", port: 50051, router: router, group: group)
/// try await server.shutdownGracefully()
/// ```
public final class GRPCServer: Sendable {
    private let channel: any Channel
    private let connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>
    private let gate: ConnectionGate
    private let configuration: GRPCServerConfiguration
    private let logger: Logger

    /// The address the server listens on (with the real port when started on port 0).
    public var localAddress: SocketAddress? { channel.localAddress }

    /// Connections open right now.
    public var connectionCount: Int { gate.current }

    private init(
        channel: any Channel, connections: NIOLockedValueBox<[ObjectIdentifier: any Channel]>, gate: ConnectionGate,
        configuration: GRPCServerConfiguration, logger: Logger
    ) {
        self.channel = channel
        self.connections = connections
        self.gate = gate
        self.configuration = configuration
        self.logger = logger
    }

    /// Binds `host:port` and starts serving.
    ///
    /// - Throws: the bind error (address in use, permission denied, unknown host).
    public static func start(
        host: String, port: Int, router: GRPCRouter, configuration: GRPCServerConfiguration = .init(),
        group: any EventLoopGroup, logger: Logger = Logger(label: "rankd.grpc")
    ) async throws -> GRPCServer {
        let connections = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
        let gate = ConnectionGate(limit: configuration.maxConnections)
        let metrics = configuration.recordsMetrics ? GRPCServerMetrics(router: router) : nil
        let limits = AddressAdmission.Limits(configuration)
        let admission = limits.enabled ? AddressAdmission(limits: limits) : nil
        let sweepers = ConnectionSweepers(configuration: configuration)
        let memoryRelease =
            configuration.releaseMemoryAfterClosedConnections > 0
            ? MemoryRelease(
                MemoryReleaseSchedule(threshold: configuration.releaseMemoryAfterClosedConnections), logger: logger)
            : nil
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                // Ahead of NIO's accept handler: a refused connection is never registered.
                channel.eventLoop.makeCompletedFuture {
                    guard let admission else { return }
                    try channel.pipeline.syncOperations.addHandler(
                        AddressAdmissionHandler(admission: admission, metrics: metrics, logger: logger))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.autoRead, value: true)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                connections.withLockedValue { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in
                    _ = connections.withLockedValue { $0.removeValue(forKey: id) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    guard let tls = configuration.tls else {
                        // Plaintext (h2c): the gRPC handler is the whole pipeline.
                        try channel.pipeline.syncOperations.addHandler(
                            GRPCServerConnectionHandler(
                                router: router, configuration: configuration, logger: logger, connectionGate: gate,
                                metrics: metrics, addressAdmission: admission, sweepers: sweepers,
                                memoryRelease: memoryRelease))
                        return
                    }
                    // The context current at accept: a certificate reload affects later connections only.
                    try channel.pipeline.syncOperations.addHandlers([
                        NIOSSLServerHandler(context: tls.context),
                        TLSHandshakeHandler(timeout: configuration.tlsHandshakeTimeout, logger: logger) { peer in
                            GRPCServerConnectionHandler(
                                router: router, configuration: configuration, logger: logger, connectionGate: gate,
                                metrics: metrics, addressAdmission: admission, tlsPeer: peer, sweepers: sweepers,
                                memoryRelease: memoryRelease)
                        },
                    ])
                }
            }
            .bind(host: host, port: port)
            .get()
        return GRPCServer(
            channel: channel, connections: connections, gate: gate, configuration: configuration, logger: logger)
    }

    /// Stops accepting, sends GOAWAY on every connection, lets in-flight calls finish for up to
    /// `configuration.drainTimeout`, then closes whatever is left.
    public func shutdownGracefully() async throws {
        try? await channel.close()
        let open = connections.withLockedValue { Array($0.values) }
        logger.info("draining connections", metadata: ["connections": "\(open.count)"])
        for connection in open {
            connection.pipeline.fireUserInboundEventTriggered(GracefulShutdownEvent())
        }
        let deadline = NIODeadline.now() + configuration.drainTimeout
        while NIODeadline.now() < deadline, connections.withLockedValue({ !$0.isEmpty }) {
            try await Task.sleep(nanoseconds: 5_000_000)
        }
        let remaining = connections.withLockedValue { Array($0.values) }
        if !remaining.isEmpty {
            logger.warning("drain timeout: closing connections", metadata: ["connections": "\(remaining.count)"])
            for connection in remaining { try? await connection.close() }
        }
    }

    /// Closes the listener and every connection at once.
    public func close() async throws {
        try? await channel.close()
        for connection in connections.withLockedValue({ Array($0.values) }) {
            try? await connection.close()
        }
    }
}

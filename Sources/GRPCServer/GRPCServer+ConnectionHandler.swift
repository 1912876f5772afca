public import Logging
public import NIOCore

extension GRPCServer {
    /// The handler that serves one HTTP/2 connection, for driving a connection without a socket:
    /// the fuzz target (Fuzz/, `server-connection`) puts it in an `EmbeddedChannel` and feeds it
    /// raw client bytes. Not for serving: ``start(host:port:router:configuration:group:logger:)``
    /// installs one per accepted connection itself. Each call gets its own connection limit.
    ///
    /// Thread safety: the handler belongs to the one channel it is added to.
    @_spi(Testing) public static func makeConnectionHandler(
        router: GRPCRouter, configuration: GRPCServerConfiguration = .init(),
        logger: Logger = Logger(label: "rankd.grpc")
    ) -> any ChannelHandler {
        GRPCServerConnectionHandler(
            router: router, configuration: configuration, logger: logger,
            connectionGate: ConnectionGate(limit: configuration.maxConnections),
            sweepers: ConnectionSweepers(configuration: configuration))
    }
}

public import GRPCTLS
public import NIOCore

/// Limits and timeouts of a ``GRPCServer``. Every field has a production-sane default.
public struct GRPCServerConfiguration: Sendable {
    /// Largest request message accepted (bytes); larger ones fail with `RESOURCE_EXHAUSTED`.
    public var maxReceiveMessageSize: Int = 4 * 1024 * 1024
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` advertised to each client.
    public var maxConcurrentStreams: Int = 256
    /// Largest request header list (HPACK-decoded bytes, as RFC 9113 §6.5.2 counts them);
    /// larger ones fail with `RESOURCE_EXHAUSTED`. Also advertised in SETTINGS.
    public var maxHeaderListSize: Int = 16 * 1024
    /// Connections accepted at once; more are closed right after accept.
    public var maxConnections: Int = 10_000
    /// Connections one client address (IPv4 address, IPv6 /64) may hold open at once; more are reset
    /// at accept, before any byte is read. 0: no limit. Behind a proxy every client has the proxy's
    /// address: raise it (or set 0) there and let the proxy limit its clients.
    public var maxConnectionsPerAddress: Int = 1000
    /// New connections per second one client address may open, sustained (a token bucket of
    /// `connectionBurstPerAddress`); past it connections are reset at accept. 0: no limit.
    public var connectionRatePerAddress: Int = 50
    /// New connections one client address may open at once before `connectionRatePerAddress` applies.
    public var connectionBurstPerAddress: Int = 100
    /// Extra connection-rate tokens a connection costs its address when it is cut off for abuse
    /// (rapid reset, PING/SETTINGS flood, handshake or header timeout, HTTP/2 protocol error), so a
    /// client that reconnects after every cut-off is soon refused at accept: at the defaults, about
    /// four abusive connections per second. Kept small so that a legitimate client sharing the
    /// address with one buggy connection is not locked out. 0: abuse costs nothing extra.
    public var abusiveConnectionCost: Int = 10
    /// A connection with no open stream for this long is closed with GOAWAY(NO_ERROR). Each connection
    /// waits up to ``idleTimeoutJitter`` longer, drawn at random, so connections opened together (a
    /// reconnect storm, an idle flood) are not all closed in the same instant.
    public var idleTimeout: TimeAmount = .minutes(5)
    /// Share of ``idleTimeout`` (0 to 1) added at random, drawn once per connection: 0.1 closes an idle
    /// connection between 1.0× and 1.1× the timeout. 0: every connection exactly at the timeout.
    public var idleTimeoutJitter: Double = 0.1
    /// Stream resets a client may cause per connection (burst), refilled at
    /// `streamResetRefillPerSecond`. Past it the connection gets GOAWAY(ENHANCE_YOUR_CALM):
    /// the defence against HTTP/2 rapid reset (CVE-2023-44487).
    public var streamResetBurst: Int = 200
    /// Sustained stream resets per second a client may cause per connection.
    public var streamResetRefillPerSecond: Int = 50
    /// PING and SETTINGS frames a client may send per connection (burst), refilled at
    /// `controlFrameRefillPerSecond`. Past it the connection gets GOAWAY(ENHANCE_YOUR_CALM): each
    /// costs us an ACK, and a client that reads its ACKs is not stopped by nghttp2's limit on
    /// queued ACKs (which catches one that does not read).
    public var controlFrameBurst: Int = 1000
    /// Sustained PING and SETTINGS frames per second a client may send per connection.
    public var controlFrameRefillPerSecond: Int = 100
    /// Time a new connection has to send the client preface and its SETTINGS, and each request
    /// has to send its whole header block. Past it: GOAWAY(ENHANCE_YOUR_CALM) and close (slowloris).
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// Time a connection's open streams may make no progress: response bytes waiting on a window
    /// the client never reopens (a zero-window reader), request bytes the client never sends, or a
    /// socket the client never reads. Past it: GOAWAY(ENHANCE_YOUR_CALM) and close. A call whose
    /// upload the server itself throttles (``deferredConsumptionLimit``) is not counted as stalled.
    public var stallTimeout: TimeAmount = .seconds(30)
    /// After this many connections have closed, freed memory is returned to the system (glibc
    /// `malloc_trim`, on a background queue once closes pause for 1 s, at most every 10 s), so connection
    /// storms do not leave the resident set higher each time. 0: never.
    public var releaseMemoryAfterClosedConnections: Int = 1000
    /// Per-stream flow-control window advertised to clients (bytes).
    public var initialStreamWindowSize: Int = 1024 * 1024
    /// Connection-level flow-control window (bytes).
    public var connectionWindowSize: Int = 8 * 1024 * 1024
    /// Request bytes one client-streaming call may hold before its client is throttled: messages
    /// whose ``ClientStreamingCall/receive(_:)`` future has not completed yet (a chunk still on
    /// its way to disk). Past this the stream's window is no longer replenished, so the client can
    /// send at most one more `initialStreamWindowSize`. The bytes such a call holds plus those
    /// being reassembled stay below `deferredConsumptionLimit + maxReceiveMessageSize +
    /// initialStreamWindowSize` (9 MiB with the defaults; about 6 MiB for 1 MiB upload chunks). A window set
    /// below HTTP/2's default of 65 535 bytes binds only once the client has the server's SETTINGS; a call it starts
    /// before that may send up to 65 535 bytes past the limit.
    public var deferredConsumptionLimit: Int = 4 * 1024 * 1024
    /// How long a graceful shutdown waits for in-flight calls before closing connections.
    public var drainTimeout: TimeAmount = .seconds(10)
    /// TLS for every connection, or `nil` for cleartext HTTP/2 (h2c). Reloading the credentials
    /// changes what connections accepted afterwards get; open ones keep theirs.
    public var tls: ServerTLSCredentials? = nil
    /// A TLS client that has not finished its handshake by then is disconnected.
    public var tlsHandshakeTimeout: TimeAmount = .seconds(10)

    /// Record calls, connections and refusals through swift-metrics (docs/OPERATIONS.md,
    /// "Metrics"). Bootstrap a backend (`MetricsSystem.bootstrap`) before starting the server.
    /// Off by default: then the call path reads no clock and touches no metric.
    public var recordsMetrics = false

    /// The defaults.
    public init() {}
}

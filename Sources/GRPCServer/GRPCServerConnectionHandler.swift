internal import CNGHTTP2
import GRPCCore
import Glibc
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
    let connectionGate: ConnectionGate
    let metrics: GRPCServerMetrics?
    /// Charged when this connection is cut off for abuse (``AddressAdmission/penalise(_:now:)``).
    let addressAdmission: AddressAdmission?

    var session: NGHTTP2Session?
    var context: ChannelHandlerContext?
    var outputBuffer: ByteBuffer
    var pendingWrite = false
    var liveStreams: ServerStream?
    var openStreams = 0
    var draining = false
    var closing = false
    var admitted = false
    var readPending = false
    /// Inside `nghttp2_session_mem_recv`, whose callbacks must not make the session send.
    var inSessionReceive = false
    /// Since when the connection has had no open stream (nil: a stream is open). The idle timeout
    /// counts from here; ``ConnectionSweeper`` checks it.
    var idleSince: NIODeadline?
    /// This connection's idle timeout: the configured one plus its own random share of the jitter.
    var idleTimeout: TimeAmount
    private var resetLimiter: FrameRateLimiter
    private var controlFrameLimiter: FrameRateLimiter
    var remoteAddress: SocketAddress?
    /// The verified client certificate's names (mutual TLS), handed to every call.
    let tlsPeer: TLSPeerIdentity?

    /// Told of every closed connection: returns freed memory after bursts of closes.
    let memoryRelease: MemoryRelease?
    let sweepers: ConnectionSweepers
    /// The sweeper whose list this connection is in (set and cleared by ``ConnectionSweeper``).
    var sweeper: ConnectionSweeper?
    /// Links in the sweeper's list.
    var sweepNext: GRPCServerConnectionHandler?
    /// Unowned: a connection leaves the list (``ConnectionSweeper/remove(_:)``) before it can be freed,
    /// and a weak reference would cost a side-table retain on every sweep step.
    unowned(unsafe) var sweepPrevious: GRPCServerConnectionHandler?

    // Progress, for the watchdog (GRPCServerConnectionHandler+Watchdog.swift). Times are on the
    // event loop's clock (virtual under EmbeddedEventLoop, so tests and the fuzz target step
    // through the timeouts deterministically).
    var startedAt = NIODeadline.now()
    /// The client's preface and first SETTINGS frame arrived.
    var handshakeDone = false
    /// Last time bytes arrived from the client.
    var lastReceived = NIODeadline.now()
    /// Last time nghttp2 took response DATA bytes of any stream.
    var lastDataSent = NIODeadline.now()
    /// Since when the channel has been unwritable (the client is not reading its socket).
    var unwritableSince: NIODeadline?
    /// Set once the connection is cut off for abuse, so that happens (and is logged) once.
    private var abuseLimitHit = false
    /// The connection's event loop clock.
    var now: NIODeadline { context?.eventLoop.now ?? .now() }

    init(
        router: GRPCRouter, configuration: GRPCServerConfiguration, logger: Logger, connectionGate: ConnectionGate,
        metrics: GRPCServerMetrics? = nil, addressAdmission: AddressAdmission? = nil, tlsPeer: TLSPeerIdentity? = nil,
        sweepers: ConnectionSweepers, memoryRelease: MemoryRelease? = nil
    ) {
        self.sweepers = sweepers
        self.memoryRelease = memoryRelease
        self.tlsPeer = tlsPeer
        self.addressAdmission = addressAdmission
        self.router = router
        self.metrics = metrics
        self.configuration = configuration
        self.logger = logger
        self.connectionGate = connectionGate
        // Small at first: it grows to the largest answer the connection sends and keeps that capacity. An
        // idle connection (10,000 of them in a flood) holds 1 KB, not 16 KB, and that much less for the
        // connection-memory release to return afterwards.
        self.outputBuffer = ByteBufferAllocator().buffer(capacity: 1024)
        self.idleTimeout = Self.jittered(configuration.idleTimeout, by: configuration.idleTimeoutJitter)
        self.resetLimiter = FrameRateLimiter(
            burst: configuration.streamResetBurst, refillPerSecond: configuration.streamResetRefillPerSecond)
        self.controlFrameLimiter = FrameRateLimiter(
            burst: configuration.controlFrameBurst, refillPerSecond: configuration.controlFrameRefillPerSecond)
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
            metrics?.connectionRefused(.maxConnections)
            closing = true
            context.close(promise: nil)
            return
        }
        admitted = true
        startedAt = context.eventLoop.now
        lastReceived = startedAt
        lastDataSent = startedAt
        metrics?.connectionAccepted(open: connectionGate.current)
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
        idleSince = startedAt
        sweepers.sweeper(for: context.eventLoop).add(self)
        // Our SETTINGS wait in the session for the client's preface: a client sends its preface without
        // waiting for ours (RFC 9113 §3.4), and the first read then answers with our SETTINGS and the ACK
        // of the client's in one write, one TCP segment instead of two per new connection.
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
        sweeper?.remove(self)
        // nghttp2_session_del does not call on_stream_close: release our streams ourselves.
        while let stream = liveStreams {
            closeStream(stream, cancelled: true)
        }
        session = nil
        if admitted {
            admitted = false
            connectionGate.release()
            metrics?.connectionClosed(open: connectionGate.current)
            memoryRelease?.connectionClosed()
        }
    }

    // MARK: Input

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let session, !closing else { return }
        lastReceived = context.eventLoop.now
        inSessionReceive = true
        let error = bytes.withUnsafeReadableBytes { session.receive($0) }
        inSessionReceive = false
        if let error {
            logger.debug(
                "closing connection after HTTP/2 error",
                metadata: ["peer": "\(remoteAddress?.description ?? "?")", "error": "\(error)"])
            // A protocol error is the client's (CONTINUATION flood, oversized header, garbage).
            penaliseAddress()
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
        unwritableSince = context.channel.isWritable ? nil : (unwritableSince ?? context.eventLoop.now)
        if context.channel.isWritable, readPending, !closing {
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
        // Inside nghttp2_session_mem_recv (a handler answering from a frame callback) the session
        // must not send: `channelRead` flushes once the receive returns.
        guard let session, let context, !inSessionReceive else { return }
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
    func closeAfterFlush() {
        guard !closing, let context else { return }
        closing = true
        outputBuffer.clear()
        if let session { _ = session.drainOutput { bytes in outputBuffer.writeBytes(bytes) } }
        pendingWrite = false
        let channel = context.channel
        // Nothing more is read from a connection being closed: bytes already in its socket cost no more
        // loop time, and a flood in progress is not drained into the handler first.
        try? channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        // Plaintext: the last bytes (a GOAWAY) wait corked and leave with the FIN of the write side's
        // shutdown, one TCP segment instead of two per close (the idle sweep closes thousands at a time).
        // The shutdown sends them before the close: a close with request bytes still unread resets the
        // connection and would drop anything still corked. (TLS ends with its own close_notify.)
        let corked = configuration.tls == nil && (try? channel.syncOptions?.setOption(Self.tcpCork, value: 1)) != nil
        context.writeAndFlush(wrapOutboundOut(outputBuffer)).whenComplete { _ in
            if corked { channel.close(mode: .output, promise: nil) }
            channel.close(promise: nil)
        }
    }

    private static let tcpCork = ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: TCP_CORK))

    // MARK: Connection management

    func beginDraining() {
        guard !draining, let session else { return }
        draining = true
        session.submitGoAway(errorCode: HTTP2ErrorCode.noError)
        // With no call open the connection closes at once: the GOAWAY is its last write.
        if openStreams == 0, !inSessionReceive { closeAfterFlush() } else { flushOutput() }
    }

    /// The sweeper's visit (``ConnectionSweeper``): closes the connection if it has been idle for its
    /// timeout, and runs the watchdog's checks. Returns whether it started closing the connection.
    func sweep(now: NIODeadline) -> Bool {
        guard session != nil, !closing else { return false }
        if !draining, openStreams == 0, let idleSince, now - idleSince >= idleTimeout {
            logger.debug("closing idle connection", metadata: ["peer": "\(remoteAddress?.description ?? "?")"])
            beginDraining()
            return true
        }
        checkProgress(now: now)
        return closing
    }

    /// `timeout` plus a random share of up to `jitter` × `timeout`, drawn once per connection (not per
    /// idle period: no random draw on the call path).
    static func jittered(_ timeout: TimeAmount, by jitter: Double) -> TimeAmount {
        let share = min(max(jitter, 0), 1)
        guard share > 0, timeout.nanoseconds > 0 else { return timeout }
        return timeout + .nanoseconds(Int64(Double(timeout.nanoseconds) * share * Double.random(in: 0..<1)))
    }

    /// Called for every RST_STREAM the client sends: past the limiter's budget (HTTP/2 rapid
    /// reset, CVE-2023-44487) the connection is closed with ENHANCE_YOUR_CALM.
    func clientResetStream() {
        if resetLimiter.record(at: now) {
            metrics?.rapidResetGoAway()
            cutOff("too many stream resets (rapid reset)")
        }
    }

    /// Called for every PING and SETTINGS frame (not ACKs) the client sends.
    func clientControlFrame(settings: Bool) {
        if settings { handshakeDone = true }
        if controlFrameLimiter.record(at: now) { cutOff("too many PING/SETTINGS frames", .controlFrames) }
    }

    /// Ends a connection whose client abuses it: GOAWAY(ENHANCE_YOUR_CALM), then close once it is
    /// out. Inside nghttp2's frame callbacks this only queues the GOAWAY: when mem_recv returns,
    /// the session no longer wants to read and channelRead closes after sending it.
    func cutOff(_ reason: String, _ metric: AbuseReason? = nil) {
        guard let session, !closing, !abuseLimitHit else { return }
        abuseLimitHit = true
        if let metric { metrics?.abuseGoAway(metric) }
        logger.warning(
            "closing connection: \(reason)", metadata: ["peer": "\(remoteAddress?.description ?? "?")"])
        penaliseAddress()
        session.terminate(errorCode: HTTP2ErrorCode.enhanceYourCalm)
        if !inSessionReceive { flushOutput() }
    }

    /// This connection was cut off for abuse: its address pays for it in connection-rate tokens.
    func penaliseAddress() {
        addressAdmission?.penalise(remoteAddress, now: .now())
    }
}

import Logging
import NIOCore
import NIOEmbedded
import TestSupport
import Testing

@_spi(Testing) @testable import GRPCServer

/// The connection-level defences on one server connection in an `EmbeddedChannel`, on the event
/// loop's virtual clock: each test steps time past a limit instead of waiting for it.
/// End to end against a real rankd: LoadTests/Attacks (docs/SECURITY.md).
@Suite struct ConnectionAbuseTests {
    static let enhanceYourCalm: UInt32 = 0xB

    /// One embedded connection with a `test.Raw/Echo` unary method and short limits.
    final class Connection {
        let channel = EmbeddedChannel()
        var received: [UInt8] = []

        init(_ configure: (inout GRPCServerConfiguration) -> Void = { _ in }) throws {
            var configuration = GRPCServerConfiguration()
            configuration.handshakeTimeout = .seconds(2)
            configuration.stallTimeout = .seconds(4)
            configuration.idleTimeout = .seconds(600)
            configure(&configuration)
            var router = GRPCRouter()
            router.register(service: "test.Raw", method: "Echo", .unary { _, request in .response(request) })
            let handler = GRPCServer.makeConnectionHandler(
                router: router, configuration: configuration,
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        }

        func send(_ bytes: [UInt8]) {
            _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
            drain()
        }

        func advance(_ amount: TimeAmount) {
            channel.embeddedEventLoop.advanceTime(by: amount)
            drain()
        }

        func drain() {
            while let buffer = try? channel.readOutbound(as: ByteBuffer.self) { received += Array(buffer: buffer) }
        }

        var goAwayCode: UInt32? { HTTP2Frames.goAwayCode(in: received) }

        /// Still open `open` from now, cut off with GOAWAY(ENHANCE_YOUR_CALM) by `open + more`.
        func expectCutOff(
            stillOpenAfter open: TimeAmount, closedAfter more: TimeAmount,
            sourceLocation: SourceLocation = #_sourceLocation
        ) {
            advance(open)
            #expect(isOpen, "cut off before \(open)", sourceLocation: sourceLocation)
            advance(more)
            #expect(goAwayCode == ConnectionAbuseTests.enhanceYourCalm, sourceLocation: sourceLocation)
            #expect(!isOpen, sourceLocation: sourceLocation)
        }
        var isOpen: Bool { channel.isActive }

        deinit { _ = try? channel.finish(acceptAlreadyClosed: true) }
    }

    static let handshake = HTTP2Frames.preface + HTTP2Frames.settings([])

    @Test func silentConnectionIsCutOffAfterTheHandshakeTimeout() throws {
        try Connection().expectCutOff(stillOpenAfter: .milliseconds(1500), closedAfter: .seconds(2))
    }

    /// The server's SETTINGS wait for the client's preface and leave with the ACK of the client's SETTINGS
    /// in one write (one TCP segment per new connection, not two; RFC 9113 §3.4 lets a client send its
    /// preface first, and every client does).
    @Test func serverSettingsAnswerTheClientPrefaceInOneWrite() throws {
        let connection = try Connection()
        #expect(try connection.channel.readOutbound(as: ByteBuffer.self) == nil, "nothing before the client's preface")
        try connection.channel.writeInbound(ByteBuffer(bytes: Self.handshake))
        var writes: [[UInt8]] = []
        while let buffer = try connection.channel.readOutbound(as: ByteBuffer.self) {
            writes.append(Array(buffer: buffer))
        }
        #expect(writes.count == 1)
        let frames = try #require(HTTP2Frames.parse(writes.joined().map { $0 }))
        let settings = HTTP2Frames.Kind.settings.rawValue
        #expect(frames.first.map { [$0.type, $0.flags] } == [settings, 0], "the server's SETTINGS first")
        #expect(frames.contains { $0.type == settings && $0.flags == 1 }, "and the ACK of the client's")
    }

    @Test func completedHandshakeIsNotCutOff() throws {
        let connection = try Connection()
        connection.send(Self.handshake)
        connection.advance(.seconds(10))
        #expect(connection.goAwayCode == nil)
        #expect(connection.isOpen)
    }

    @Test func headerBlockThatNeverEndsIsCutOff() throws {
        let connection = try Connection()
        let block = HTTP2Frames.hpack(HTTP2Frames.requestHeaders(path: "/test.Raw/Echo"))
        // HEADERS without END_HEADERS: the stream has begun, its header block never completes.
        connection.send(
            Self.handshake
                + HTTP2Frames.frame(
                    type: HTTP2Frames.Kind.headers.rawValue, flags: 0, stream: 1, payload: Array(block.prefix(10))))
        connection.expectCutOff(stillOpenAfter: .seconds(1), closedAfter: .seconds(2))
    }

    @Test func zeroWindowReaderIsCutOffAfterTheStallTimeout() throws {
        let connection = try Connection()
        var bytes = HTTP2Frames.preface + HTTP2Frames.settings([(4, 0)])  // SETTINGS_INITIAL_WINDOW_SIZE = 0
        bytes += HTTP2Frames.headers(1, HTTP2Frames.requestHeaders(path: "/test.Raw/Echo"))
        bytes += HTTP2Frames.data(1, HTTP2Frames.grpcMessage(Array(repeating: 7, count: 100)), endStream: true)
        connection.send(bytes)
        // Within the stall timeout the response just waits for window.
        connection.expectCutOff(stillOpenAfter: .seconds(3), closedAfter: .seconds(3))
    }

    @Test func requestWhoseBodyNeverComesIsCutOffButAFinishedCallIsNot() throws {
        let stalled = try Connection()
        stalled.send(Self.handshake + HTTP2Frames.headers(1, HTTP2Frames.requestHeaders(path: "/test.Raw/Echo")))
        stalled.advance(.seconds(7))
        #expect(stalled.goAwayCode == Self.enhanceYourCalm)

        let finished = try Connection()
        finished.send(
            Self.handshake + HTTP2Frames.headers(1, HTTP2Frames.requestHeaders(path: "/test.Raw/Echo"))
                + HTTP2Frames.data(1, HTTP2Frames.grpcMessage([1, 2, 3]), endStream: true))
        finished.advance(.seconds(20))
        #expect(finished.goAwayCode == nil)
        #expect(finished.isOpen)
        let frames = try #require(HTTP2Frames.parse(finished.received))
        #expect(frames.contains { $0.type == HTTP2Frames.Kind.data.rawValue && $0.stream == 1 })
    }

    @Test func pingFloodFromAClientThatReadsItsAcksGetsGoAway() throws {
        let connection = try Connection { $0.controlFrameBurst = 50 }
        let ping = HTTP2Frames.frame(
            type: HTTP2Frames.Kind.ping.rawValue, flags: 0, stream: 0, payload: Array(repeating: 1, count: 8))
        // The embedded channel takes every ACK at once: what nghttp2's queued-ACK limit cannot see.
        connection.send(Self.handshake)
        for _ in 0..<40 { connection.send(ping) }
        #expect(connection.goAwayCode == nil, "the client's SETTINGS and 40 PINGs are within the burst of 50")
        for _ in 0..<20 { connection.send(ping) }
        #expect(connection.goAwayCode == Self.enhanceYourCalm)
        #expect(!connection.isOpen)
    }

    @Test func controlFrameBudgetRefillsOverTime() throws {
        let connection = try Connection {
            $0.controlFrameBurst = 10
            $0.controlFrameRefillPerSecond = 10
        }
        connection.send(Self.handshake)
        let ping = HTTP2Frames.frame(
            type: HTTP2Frames.Kind.ping.rawValue, flags: 0, stream: 0, payload: Array(repeating: 1, count: 8))
        for _ in 0..<3 {
            for _ in 0..<8 { connection.send(ping) }
            connection.advance(.seconds(1))
        }
        #expect(connection.goAwayCode == nil)
        #expect(connection.isOpen)
    }

    @Test func idleConnectionsCloseEachAtItsOwnJitteredTimeout() throws {
        // Jitter 0.5 of 10 s: each connection is closed between 10 and 15 s idle, not all at the same moment.
        var closedAfter: Set<Int> = []
        for _ in 0..<20 {
            let connection = try Connection {
                $0.idleTimeout = .seconds(10)
                $0.idleTimeoutJitter = 0.5
            }
            connection.send(Self.handshake)
            connection.advance(.milliseconds(9_990))
            #expect(connection.goAwayCode == nil)
            var idle = 9_990
            while connection.goAwayCode == nil, idle < 16_000 {
                connection.advance(.milliseconds(100))
                idle += 100
            }
            #expect(connection.goAwayCode == 0)  // NO_ERROR: a graceful close
            #expect(idle <= 15_100)
            closedAfter.insert(idle)
        }
        #expect(closedAfter.count > 1)
    }

    @Test func idleTimeoutJitterStaysWithinItsShare() {
        let timeout = TimeAmount.seconds(100)
        let draws = (0..<200).map { _ in GRPCServerConnectionHandler.jittered(timeout, by: 0.1) }
        #expect(draws.allSatisfy { $0 >= timeout && $0 < .seconds(110) })
        // Spread over the window: 200 draws from 10 s all within 100 ms of each other would be a bug.
        #expect(draws.max()! - draws.min()! > .milliseconds(100))
        #expect(GRPCServerConnectionHandler.jittered(timeout, by: 0) == timeout)
        #expect(GRPCServerConnectionHandler.jittered(timeout, by: -1) == timeout)
        #expect(GRPCServerConnectionHandler.jittered(timeout, by: 5) < .seconds(200))
    }
}

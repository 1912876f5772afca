import Logging
import NIOCore
import NIOEmbedded
import TestSupport
import Testing

@testable import GRPCServer

/// Many connections on one event loop share one sweep for their idle timeouts and watchdogs
/// (``ConnectionSweeper``), on the loop's virtual clock.
@Suite struct ConnectionSweeperTests {
    static let handshake = HTTP2Frames.preface + HTTP2Frames.settings([])

    /// `count` connections on one embedded loop, with one set of sweepers as a server has.
    final class Connections {
        let loop = EmbeddedEventLoop()
        let sweepers: ConnectionSweepers
        var channels: [EmbeddedChannel] = []
        var received: [[UInt8]]

        init(count: Int, _ configure: (inout GRPCServerConfiguration) -> Void = { _ in }) throws {
            var configuration = GRPCServerConfiguration()
            configuration.idleTimeout = .seconds(10)
            configuration.idleTimeoutJitter = 0
            configuration.handshakeTimeout = .seconds(2)
            configuration.stallTimeout = .seconds(4)
            configure(&configuration)
            sweepers = ConnectionSweepers(configuration: configuration)
            var router = GRPCRouter()
            router.register(service: "test.Raw", method: "Echo", .unary { _, request in .response(request) })
            received = Array(repeating: [], count: count)
            let gate = ConnectionGate(limit: count)
            for _ in 0..<count {
                let channel = EmbeddedChannel(loop: loop)
                try channel.pipeline.syncOperations.addHandler(
                    GRPCServerConnectionHandler(
                        router: router, configuration: configuration,
                        logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
                        connectionGate: gate, sweepers: sweepers))
                try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
                channels.append(channel)
            }
        }

        var sweeper: ConnectionSweeper { sweepers.sweeper(for: loop) }

        func send(_ index: Int, _ bytes: [UInt8]) {
            _ = try? channels[index].writeInbound(ByteBuffer(bytes: bytes))
            drain()
        }

        func advance(_ amount: TimeAmount) {
            loop.advanceTime(by: amount)
            drain()
        }

        func drain() {
            for (index, channel) in channels.enumerated() {
                while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
                    received[index] += Array(buffer: buffer)
                }
            }
        }

        func goAwayCode(_ index: Int) -> UInt32? { HTTP2Frames.goAwayCode(in: received[index]) }
        var openCount: Int { channels.count { $0.isActive } }

        deinit {
            for channel in channels { _ = try? channel.finish(acceptAlreadyClosed: true) }
        }
    }

    @Test func theSweepPeriodIsAQuarterOfTheShortestTimeoutWithinBounds() {
        #expect(ConnectionSweeper.period(for: GRPCServerConfiguration()) == .milliseconds(2_500))
        var configuration = GRPCServerConfiguration()
        configuration.handshakeTimeout = .milliseconds(8)
        #expect(ConnectionSweeper.period(for: configuration) == .milliseconds(10))
        configuration.handshakeTimeout = .seconds(600)
        configuration.stallTimeout = .seconds(600)
        configuration.idleTimeout = .seconds(600)
        #expect(ConnectionSweeper.period(for: configuration) == .seconds(5))
    }

    @Test func idleConnectionsCloseAtTheirTimeoutAndABusyOneWaitsForItsOwn() throws {
        let connections = try Connections(count: 200)
        for index in 0..<200 { connections.send(index, Self.handshake) }
        #expect(connections.sweeper.count == 200)

        // A call on connection 0 at 6 s: its idle time restarts when the call ends.
        connections.advance(.seconds(6))
        connections.send(
            0,
            HTTP2Frames.headers(1, HTTP2Frames.requestHeaders(path: "/test.Raw/Echo"))
                + HTTP2Frames.data(1, HTTP2Frames.grpcMessage([1, 2, 3]), endStream: true))
        #expect(connections.goAwayCode(0) == nil)
        let frames = try #require(HTTP2Frames.parse(connections.received[0]))
        #expect(
            frames.contains { $0.type == HTTP2Frames.Kind.data.rawValue && $0.stream == 1 }, "the call was answered")

        // 10 s idle, checked every 0.5 s (a quarter of the 2 s handshake timeout): closed by 10.5 s.
        connections.advance(.milliseconds(3_900))
        #expect(connections.openCount == 200, "closed before the idle timeout")
        connections.advance(.milliseconds(600))
        #expect((1..<200).allSatisfy { connections.goAwayCode($0) == 0 }, "GOAWAY NO_ERROR, a graceful close")
        #expect(connections.goAwayCode(0) == nil)
        #expect(connections.openCount == 1)
        #expect(connections.sweeper.count == 1, "closed connections leave the sweep")

        connections.advance(.milliseconds(5_400))  // 15.9 s: 9.9 s after its call
        #expect(connections.goAwayCode(0) == nil)
        connections.advance(.milliseconds(600))
        #expect(connections.goAwayCode(0) == 0)
        #expect(connections.openCount == 0)
        #expect(connections.sweeper.count == 0)
    }

    @Test func connectionsClosedByTheirClientsLeaveTheSweepAndTheRestAreStillWatched() throws {
        let connections = try Connections(count: 50)
        for index in 0..<50 where index % 2 == 0 { connections.send(index, Self.handshake) }
        for index in stride(from: 0, to: 50, by: 4) { _ = try? connections.channels[index].close().wait() }
        #expect(connections.sweeper.count == 37)
        // The odd ones never sent their preface: cut off by the watchdog after the 2 s handshake timeout.
        connections.advance(.milliseconds(1_900))
        #expect(connections.openCount == 37)
        connections.advance(.milliseconds(600))
        #expect((0..<50).filter { $0 % 2 == 1 }.allSatisfy { connections.goAwayCode($0) == 0xB })
        #expect(connections.openCount == 12)
        #expect(connections.sweeper.count == 12)
    }
}

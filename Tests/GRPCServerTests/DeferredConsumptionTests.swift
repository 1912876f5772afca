import Dispatch
import GRPCClient
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TestSupport
import Testing

@testable import GRPCServer

/// What a ``SlowSinkCall`` saw, shared with the test.
private final class SinkRecord: Sendable {
    private struct State {
        var bytes: [UInt8] = []
        var held = 0
        var maxHeld = 0
    }
    private let state = NIOLockedValueBox(State())
    /// The "disk": consumes one message per `delay`, in order.
    let disk = DispatchQueue(label: "test.slow-sink")
    let delay: TimeAmount

    init(delay: TimeAmount) { self.delay = delay }

    func received(_ message: ByteBuffer) {
        state.withLockedValue { state in
            state.bytes += message.readableBytesView
            state.held += 5 + message.readableBytes
            state.maxHeld = max(state.maxHeld, state.held)
        }
    }
    func consumed(_ message: ByteBuffer) { state.withLockedValue { $0.held -= 5 + message.readableBytes } }
    var bytes: [UInt8] { state.withLockedValue { $0.bytes } }
    /// The most wire bytes of received but not yet consumed messages at any time.
    var maxHeld: Int { state.withLockedValue { $0.maxHeld } }
}

/// A client-streaming call whose messages are consumed later, one by one, on a slow queue.
private final class SlowSinkCall: ClientStreamingCall {
    let record: SinkRecord
    let eventLoop: any EventLoop
    init(record: SinkRecord, eventLoop: any EventLoop) {
        self.record = record
        self.eventLoop = eventLoop
    }

    func receive(_ message: ByteBuffer) throws(GRPCStatus) -> EventLoopFuture<Void>? {
        record.received(message)
        let consumed = eventLoop.makePromise(of: Void.self)
        let record = self.record
        record.disk.async {
            usleep(UInt32(record.delay.nanoseconds / 1000))
            record.consumed(message)
            consumed.succeed()
        }
        return consumed.futureResult
    }

    func finish() -> UnaryResult {
        // Answer once the last message is consumed, as a publish answers once it is on disk.
        let done = eventLoop.makePromise(of: ByteBuffer.self)
        let record = self.record
        record.disk.async { done.succeed(ByteBuffer(string: "\(record.bytes.count)")) }
        return .future(done.futureResult)
    }

    func cancel() {}
}

private let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// A server of one event loop with a slow sink and an echo, and two client connections to it
/// (on a client loop of their own).
private func withSlowSinkServer(
    record: SinkRecord,
    _ body: (_ uploader: GRPCClientConnection, _ other: GRPCClientConnection) async throws -> Void
) async throws {
    let configuration = smallWindows
    var router = GRPCRouter()
    router.register(
        service: "test.Raw", method: "Sink",
        .clientStreaming { context in SlowSinkCall(record: record, eventLoop: context.eventLoop) })
    router.register(service: "test.Raw", method: "Echo", .unary { _, request in .response(request) })
    let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let server = try await GRPCServer.start(
        host: "127.0.0.1", port: 0, router: router, configuration: configuration, group: serverGroup,
        logger: quietLogger)
    var failure: (any Error)?
    do {
        let port = server.localAddress!.port!
        let uploader = try await GRPCClientConnection.connect(host: "127.0.0.1", port: port, group: clientGroup)
        let other = try await GRPCClientConnection.connect(host: "127.0.0.1", port: port, group: clientGroup)
        do { try await body(uploader, other) } catch { failure = error }
        await other.close()
        await uploader.close()
    } catch {
        failure = error
    }
    try await server.close()
    try await serverGroup.shutdownGracefully()
    try await clientGroup.shutdownGracefully()
    if let failure { throw failure }
}

/// 16 KiB stream windows and an 8 KiB limit: a few kilobytes of messages reach both.
private let smallWindows = {
    var configuration = GRPCServerConfiguration()
    configuration.initialStreamWindowSize = 16 * 1024
    configuration.deferredConsumptionLimit = 8 * 1024
    return configuration
}()

/// Starts a `Sink` call and queues every message of `sent`, then the end of the request.
private func upload(_ sent: [[UInt8]], on client: GRPCClientConnection) -> GRPCClientCall {
    let call = client.startCall(path: "/test.Raw/Sink", timeout: .seconds(20))
    for message in sent { call.send(ByteBuffer(bytes: message)) }
    call.finishRequest()
    return call
}

/// Seeded messages of `size` bytes each.
private func messages(_ count: Int, size: Int) -> [[UInt8]] {
    var random = SeededGenerator(seed: 7)
    return (0..<count).map { _ in (0..<size).map { _ in UInt8.random(in: 0...255, using: &random) } }
}

@Suite struct DeferredConsumptionTests {
    /// Small windows and limit, a sink that takes 10 ms per message: the client must be held to
    /// the documented bound, other calls on the same loop and even the same connection must not
    /// wait for the sink, and every byte must arrive in order.
    @Test func slowSinkThrottlesItsClientOnlyAndBoundsHeldBytes() async throws {
        let configuration = smallWindows
        let record = SinkRecord(delay: .milliseconds(10))
        let sent = messages(60, size: 3000)
        try await withSlowSinkServer(record: record) { uploader, other in
            // One round trip first, so the uploader has applied the server's SETTINGS: until then a client may
            // use HTTP/2's default 65 535-byte stream window, four times this test's 16 KiB (the bound below is
            // for the configured window; the configuration documents the early case).
            _ = try await uploader.unaryResponse(path: "/test.Raw/Echo", request: ByteBuffer(string: "warm"))
            let call = upload(sent, on: uploader)

            try await Task.sleep(for: .milliseconds(100))
            var slowest = Duration.zero
            for connection in [other, uploader, other, uploader, other] {
                let started = ContinuousClock.now
                let reply = try await connection.unaryResponse(path: "/test.Raw/Echo", request: ByteBuffer(string: "x"))
                slowest = max(slowest, ContinuousClock.now - started)
                #expect(String(buffer: reply) == "x")
            }
            let receivedDuringProbes = record.bytes.count

            let result = try await call.result.get()
            #expect(String(buffer: try result.unaryResponse()) == "\(sent.count * 3000)")
            #expect(
                slowest < TimingScale.scaled(.milliseconds(200)), "an Echo call waited \(slowest) for the slow sink")
            #expect(receivedDuringProbes < sent.count * 3000, "the probes must run while the sink throttles")
        }
        #expect(record.bytes == Array(sent.joined()))
        let bound =
            configuration.deferredConsumptionLimit + configuration.initialStreamWindowSize + (5 + 3000)
        #expect(record.maxHeld <= bound, "held \(record.maxHeld) bytes, bound \(bound)")
        #expect(record.maxHeld > configuration.deferredConsumptionLimit, "the limit was never reached")
    }

    /// Messages larger than the stream window (and the limit) still get through one at a time:
    /// credit for a message being reassembled is never withheld while the call holds too little.
    @Test func messagesLargerThanTheStreamWindowDoNotDeadlock() async throws {
        let record = SinkRecord(delay: .milliseconds(5))
        let sent = messages(6, size: 100_000)
        try await withSlowSinkServer(record: record) { client, _ in
            let call = upload(sent, on: client)
            let result = try await call.result.get()
            #expect(String(buffer: try result.unaryResponse()) == "\(sent.count * 100_000)")
        }
        #expect(record.bytes == Array(sent.joined()))
    }
}

import GRPCClient
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import GRPCServer

/// A generic router with raw-bytes methods: proves the server knows nothing about protobuf.
private func testRouter() -> GRPCRouter {
    var router = GRPCRouter()
    router.register(service: "test.Raw", method: "Echo", .unary { _, request in .response(request) })
    router.register(
        service: "test.Raw", method: "Fail",
        .unary { _, request in
            .failure(GRPCStatus(.invalidArgument, String(buffer: request)))
        })
    router.register(
        service: "test.Raw", method: "Slow",
        .unary { context, request in
            .future(context.eventLoop.scheduleTask(in: .milliseconds(300)) { request }.futureResult)
        })
    router.register(
        service: "test.Raw", method: "Deadline",
        .unary { context, _ in
            let remaining = context.remainingTime()?.nanoseconds ?? -1
            return .response(ByteBuffer(string: "\(remaining)"))
        })
    router.register(service: "test.Raw", method: "Sum", .clientStreaming { _ in SumCall() })
    router.register(
        service: "test.Raw", method: "Count",
        .serverStreaming { _, request, writer in
            let count = Int(String(buffer: request)) ?? 0
            for index in 0..<count { writer.send(ByteBuffer(string: "\(index)")) }
            writer.finish(.ok)
        })
    return router
}

private final class SumCall: ClientStreamingCall {
    var total = 0
    var count = 0
    func receive(_ message: ByteBuffer) throws(GRPCStatus) -> EventLoopFuture<Void>? {
        count += 1
        total += message.readableBytes
        if String(buffer: message) == "poison" { throw GRPCStatus(.invalidArgument, "poisoned at message \(count)") }
        return nil
    }
    func finish() -> UnaryResult { .response(ByteBuffer(string: "\(count):\(total)")) }
    func cancel() {}
}

/// Tests assert on statuses, not logs: keep the output to the test runner's.
private let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// Runs `body` against a server on an ephemeral loopback port and a connected client.
private func withServer(
    configuration: GRPCServerConfiguration = .init(),
    _ body: (GRPCServer, GRPCClientConnection) async throws -> Void
) async throws {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let server = try await GRPCServer.start(
        host: "127.0.0.1", port: 0, router: testRouter(), configuration: configuration, group: group,
        logger: quietLogger)
    let client = try await GRPCClientConnection.connect(
        host: "127.0.0.1", port: server.localAddress!.port!, group: group)
    do {
        try await body(server, client)
    } catch {
        await client.close()
        try await server.close()
        try await group.shutdownGracefully()
        throw error
    }
    await client.close()
    try await server.close()
    try await group.shutdownGracefully()
}

@Suite struct ServerClientTests {
    @Test func unaryCallEchoesBytes() async throws {
        try await withServer { _, client in
            let reply = try await client.unaryResponse(path: "/test.Raw/Echo", request: ByteBuffer(string: "hi"))
            #expect(String(buffer: reply) == "hi")
        }
    }

    @Test func emptyMessageRoundTrips() async throws {
        try await withServer { _, client in
            let reply = try await client.unaryResponse(path: "/test.Raw/Echo", request: ByteBuffer())
            #expect(reply.readableBytes == 0)
        }
    }

    @Test func messageLargerThanOneDataFrameRoundTrips() async throws {
        try await withServer { _, client in
            let payload = ByteBuffer(bytes: (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            let reply = try await client.unaryResponse(path: "/test.Raw/Echo", request: payload)
            #expect(reply == payload)
        }
    }

    @Test func manyConcurrentCallsOnOneConnection() async throws {
        try await withServer { _, client in
            let futures = (0..<500).map { index in
                client.unary(path: "/test.Raw/Echo", request: ByteBuffer(string: "\(index)"))
            }
            for (index, future) in futures.enumerated() {
                let result = try await future.get()
                #expect(String(buffer: try result.unaryResponse()) == "\(index)")
            }
        }
    }

    @Test func failureStatusAndMessageArriveIntact() async throws {
        try await withServer { _, client in
            let result = try await client.unary(path: "/test.Raw/Fail", request: ByteBuffer(string: "k: 0% ✗")).get()
            #expect(result.status == GRPCStatus(.invalidArgument, "k: 0% ✗"))
            #expect(result.messages.isEmpty)
        }
    }

    @Test func unknownMethodIsUnimplemented() async throws {
        try await withServer { _, client in
            let result = try await client.unary(path: "/test.Raw/Nope", request: ByteBuffer()).get()
            #expect(result.status.code == .unimplemented)
            #expect(result.status.message.contains("/test.Raw/Nope"))
        }
    }

    @Test func deadlineReachesHandler() async throws {
        try await withServer { _, client in
            let reply = try await client.unaryResponse(
                path: "/test.Raw/Deadline", request: ByteBuffer(), timeout: .seconds(5))
            let remaining = Int64(String(buffer: reply)) ?? -1
            #expect(remaining > 4_000_000_000 && remaining <= 5_000_000_000)
        }
    }

    @Test func slowHandlerPastDeadlineIsDeadlineExceeded() async throws {
        try await withServer { _, client in
            let result = try await client.unary(
                path: "/test.Raw/Slow", request: ByteBuffer(), timeout: .milliseconds(50)
            ).get()
            #expect(result.status.code == .deadlineExceeded)
            // The connection is still good afterwards.
            let reply = try await client.unaryResponse(path: "/test.Raw/Echo", request: ByteBuffer(string: "ok"))
            #expect(String(buffer: reply) == "ok")
        }
    }

    @Test func eachCallGetsItsOwnDeadlineFromCachedHeaders() async throws {
        try await withServer { _, client in
            // Same path, different timeouts: the client reuses header blocks per (path, timeout).
            for seconds: Int64 in [5, 1, 5] {
                let reply = try await client.unaryResponse(
                    path: "/test.Raw/Deadline", request: ByteBuffer(), timeout: .seconds(seconds))
                let remaining = Int64(String(buffer: reply)) ?? -1
                #expect(remaining > (seconds - 1) * 1_000_000_000 && remaining <= seconds * 1_000_000_000)
            }
        }
    }

    @Test func earlierDeadlineOfALaterCallExpiresOnlyThatCall() async throws {
        try await withServer { _, client in
            // One timer per connection: the 50 ms call must re-arm it earlier, and its firing
            // must leave the 5 s call (answered after 300 ms) alone.
            let long = client.unary(path: "/test.Raw/Slow", request: ByteBuffer(string: "a"), timeout: .seconds(5))
            let short = client.unary(
                path: "/test.Raw/Slow", request: ByteBuffer(string: "b"), timeout: .milliseconds(50))
            let shortResult = try await short.get()
            #expect(shortResult.status.code == .deadlineExceeded)
            let longReply = try await long.get().unaryResponse()
            #expect(String(buffer: longReply) == "a")
        }
    }

    @Test func callbackUnaryCallsChainFromTheirCompletions() async throws {
        try await withServer { _, client in
            // The closed-loop pattern of LoadTests: each call starts the next from its callback,
            // on the connection's event loop (inside nghttp2's receive).
            let replies: [String] = await withCheckedContinuation { continuation in
                let chain = CallChain(client: client, count: 200) { continuation.resume(returning: $0) }
                client.eventLoop.execute { chain.next() }
            }
            #expect(replies == (0..<200).map { "\($0)" })
        }
    }

    @Test func oversizedRequestIsResourceExhausted() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.maxReceiveMessageSize = 1000
        try await withServer(configuration: configuration) { _, client in
            let result = try await client.unary(
                path: "/test.Raw/Echo", request: ByteBuffer(repeating: 1, count: 1001)
            ).get()
            #expect(result.status.code == .resourceExhausted)
            let reply = try await client.unaryResponse(
                path: "/test.Raw/Echo", request: ByteBuffer(repeating: 1, count: 1000))
            #expect(reply.readableBytes == 1000)
        }
    }

    @Test func clientStreamingDeliversEveryMessage() async throws {
        try await withServer { _, client in
            let call = client.startCall(path: "/test.Raw/Sum")
            for index in 0..<3000 {
                // Await the back-pressure future now and then, not every time: each await is a
                // thread hop, and 3000 of them dominate the suite on a loaded machine.
                let sent = call.send(ByteBuffer(repeating: 0, count: index % 100))
                if index % 250 == 249 { try await sent.get() }
            }
            call.finishRequest()
            let result = try await call.result.get()
            let expected = (0..<3000).reduce(0) { $0 + $1 % 100 }
            #expect(String(buffer: try result.unaryResponse()) == "3000:\(expected)")
        }
    }

    @Test func clientStreamingHandlerErrorEndsCallEarly() async throws {
        try await withServer { _, client in
            let call = client.startCall(path: "/test.Raw/Sum")
            call.send(ByteBuffer(string: "a"))
            call.send(ByteBuffer(string: "poison"))
            call.send(ByteBuffer(string: "b"), endRequest: true)
            let result = try await call.result.get()
            #expect(result.status == GRPCStatus(.invalidArgument, "poisoned at message 2"))
        }
    }

    @Test func serverStreamingSendsAllMessagesThenStatus() async throws {
        try await withServer { _, client in
            let result = try await client.unary(path: "/test.Raw/Count", request: ByteBuffer(string: "250")).get()
            #expect(result.status.code == .ok)
            #expect(result.messages.map { String(buffer: $0) } == (0..<250).map { "\($0)" })
        }
    }

    @Test func unaryWithTwoRequestMessagesIsInvalidArgument() async throws {
        try await withServer { _, client in
            let call = client.startCall(path: "/test.Raw/Echo")
            call.send(ByteBuffer(string: "one"))
            call.send(ByteBuffer(string: "two"), endRequest: true)
            let status = try await call.result.get().status
            #expect(status.code == .invalidArgument)
        }
    }

    @Test func unaryWithNoRequestMessageIsInvalidArgument() async throws {
        try await withServer { _, client in
            let call = client.startCall(path: "/test.Raw/Echo")
            call.finishRequest()
            let status = try await call.result.get().status
            #expect(status.code == .invalidArgument)
        }
    }

    @Test func gracefulShutdownLetsInFlightCallFinish() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await GRPCServer.start(
            host: "127.0.0.1", port: 0, router: testRouter(), group: group, logger: quietLogger)
        let client = try await GRPCClientConnection.connect(
            host: "127.0.0.1", port: server.localAddress!.port!, group: group)
        let inFlight = client.unary(path: "/test.Raw/Slow", request: ByteBuffer(string: "late"))
        try await Task.sleep(nanoseconds: 50_000_000)
        try await server.shutdownGracefully()
        let result = try await inFlight.get()
        #expect(String(buffer: try result.unaryResponse()) == "late")
        #expect(server.connectionCount == 0)
        await client.close()
        try await group.shutdownGracefully()
    }

    @Test func connectionLimitRefusesExtraConnections() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.maxConnections = 1
        try await withServer(configuration: configuration) { server, client in
            _ = try await client.unaryResponse(path: "/test.Raw/Echo", request: ByteBuffer(string: "x"))
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let second = try await GRPCClientConnection.connect(
                host: "127.0.0.1", port: server.localAddress!.port!, group: group)
            let result = try await second.unary(path: "/test.Raw/Echo", request: ByteBuffer(string: "y")).get()
            #expect(result.status.code == .unavailable)
            await second.close()
            try await group.shutdownGracefully()
            let reply = try await client.unaryResponse(path: "/test.Raw/Echo", request: ByteBuffer(string: "z"))
            #expect(String(buffer: reply) == "z")
        }
    }

    @Test func oversizedHeaderListIsResourceExhausted() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.maxHeaderListSize = 2048
        try await withServer(configuration: configuration) { _, client in
            let big = [("x-padding", String(repeating: "a", count: 4000))]
            let result = try await client.unary(path: "/test.Raw/Echo", request: ByteBuffer(), metadata: big).get()
            #expect(result.status.code == .resourceExhausted)
            #expect(result.status.message.contains("2048"))
            let reply = try await client.unaryResponse(path: "/test.Raw/Echo", request: ByteBuffer(string: "small"))
            #expect(String(buffer: reply) == "small")
        }
    }

    @Test func idleConnectionIsClosed() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.idleTimeout = .milliseconds(300)
        try await withServer(configuration: configuration) { server, client in
            // A connection with no call at all is closed once the idle timeout passes.
            for _ in 0..<250 where client.isActive {
                try await Task.sleep(nanoseconds: 20_000_000)
            }
            #expect(!client.isActive)
            for _ in 0..<50 where server.connectionCount > 0 {
                try await Task.sleep(nanoseconds: 20_000_000)
            }
            #expect(server.connectionCount == 0)
        }
    }

    @Test func metadataReachesTheHandler() async throws {
        var router = GRPCRouter()
        router.register(
            service: "test.Meta", method: "Auth",
            .unary { context, _ in .response(ByteBuffer(string: context.metadataValue("authorization") ?? "none")) })
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await GRPCServer.start(
            host: "127.0.0.1", port: 0, router: router, group: group, logger: quietLogger)
        let client = try await GRPCClientConnection.connect(
            host: "127.0.0.1", port: server.localAddress!.port!, group: group)
        let reply = try await client.unaryResponse(
            path: "/test.Meta/Auth", request: ByteBuffer(), metadata: [("Authorization", "Bearer t0ken")])
        #expect(String(buffer: reply) == "Bearer t0ken")
        // Calls without metadata use cached header blocks: none may carry another call's metadata.
        let bare = try await client.unaryResponse(path: "/test.Meta/Auth", request: ByteBuffer())
        #expect(String(buffer: bare) == "none")
        let again = try await client.unaryResponse(
            path: "/test.Meta/Auth", request: ByteBuffer(), metadata: [("authorization", "Bearer other")])
        #expect(String(buffer: again) == "Bearer other")
        await client.close()
        try await server.close()
        try await group.shutdownGracefully()
    }
}

/// Starts call i+1 from call i's result callback; hands the replies to `done` after `count`.
private final class CallChain: @unchecked Sendable {
    // Touched only on the client's event loop.
    private let client: GRPCClientConnection
    private let count: Int
    private let done: @Sendable ([String]) -> Void
    private var replies: [String] = []

    init(client: GRPCClientConnection, count: Int, done: @escaping @Sendable ([String]) -> Void) {
        self.client = client
        self.count = count
        self.done = done
    }

    func next() {
        guard replies.count < count else { return done(replies) }
        client.unary(path: "/test.Raw/Echo", request: ByteBuffer(string: "\(replies.count)")) { [self] result in
            replies.append(
                result.status.code == .ok ? String(buffer: result.messages.first ?? ByteBuffer()) : "\(result.status)")
            next()
        }
    }
}

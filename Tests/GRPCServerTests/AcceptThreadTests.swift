import Foundation
import GRPCClient
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import GRPCServer

/// The listener's own thread (``GRPCServerConfiguration/dedicatedAcceptThread``) and the jittered
/// idle timeout: what a connection flood or an idle flood may cost the loops that serve calls.
@Suite struct AcceptThreadTests {
    /// Threads of this process whose nice value is `nice` (/proc/self/task/*/stat, field 19). Tests
    /// use a value no other test's server runs at, so servers of tests running in parallel do not count.
    static func threads(atNice nice: Int) -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.filter { task in
            guard let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
                let end = stat.lastIndex(of: ")")
            else { return false }
            // After "pid (comm)": state is field 3, so nice (field 19) is the 17th from here.
            let fields = stat[stat.index(after: end)...].split(separator: " ")
            return fields.count > 16 && Int(fields[16]) == nice
        }.count
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<100 where !condition() { try await Task.sleep(nanoseconds: 20_000_000) }
    }

    static func startEcho(_ configuration: GRPCServerConfiguration, group: any EventLoopGroup) async throws
        -> GRPCServer
    {
        var router = GRPCRouter()
        router.register(service: "test.Raw", method: "Echo", .unary { _, request in .response(request) })
        return try await GRPCServer.start(
            host: "127.0.0.1", port: 0, router: router, configuration: configuration, group: group,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    @Test func acceptThreadRunsAtItsNiceValueServesAndStopsWithTheServer() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.acceptThreadNice = 17
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        #expect(Self.threads(atNice: 17) == 0)
        let server = try await Self.startEcho(configuration, group: group)
        // One thread at the lower priority (the accept loop); the serving loop keeps the process's.
        #expect(Self.threads(atNice: 17) == 1)
        let client = try await GRPCClientConnection.connect(
            host: "127.0.0.1", port: server.localAddress!.port!, group: group)
        let reply = try await client.unaryResponse(path: "/test.Raw/Echo", request: ByteBuffer(string: "hi"))
        #expect(String(buffer: reply) == "hi")
        #expect(server.connectionCount == 1)
        await client.close()
        try await server.close()
        try await Self.waitUntil { Self.threads(atNice: 17) == 0 }
        #expect(Self.threads(atNice: 17) == 0)
        try await group.shutdownGracefully()
    }

    @Test func sharedAcceptLoopStartsNoThreadOfItsOwn() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.dedicatedAcceptThread = false
        configuration.acceptThreadNice = 16
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await Self.startEcho(configuration, group: group)
        #expect(Self.threads(atNice: 16) == 0)
        let client = try await GRPCClientConnection.connect(
            host: "127.0.0.1", port: server.localAddress!.port!, group: group)
        let reply = try await client.unaryResponse(path: "/test.Raw/Echo", request: ByteBuffer(string: "shared"))
        #expect(String(buffer: reply) == "shared")
        await client.close()
        try await server.close()
        try await group.shutdownGracefully()
    }

    @Test func failedBindStopsTheAcceptThread() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.acceptThreadNice = 15
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let first = try await Self.startEcho(configuration, group: group)
        await #expect(throws: (any Error).self) {
            // SO_REUSEADDR does not let a second listener bind a port that is listening.
            _ = try await GRPCServer.start(
                host: "127.0.0.1", port: first.localAddress!.port!, router: GRPCRouter(),
                configuration: configuration, group: group)
        }
        try await first.close()
        try await Self.waitUntil { Self.threads(atNice: 15) == 0 }
        #expect(Self.threads(atNice: 15) == 0)
        try await group.shutdownGracefully()
    }

    @Test func idleTimeoutIsJitteredWithinItsShareOncePerConnection() {
        let timeout = TimeAmount.seconds(100)
        let draws = (0..<200).map { _ in GRPCServerConnectionHandler.jittered(timeout, by: 0.1) }
        #expect(draws.allSatisfy { $0 >= timeout && $0 < .seconds(110) })
        // Spread over the window, not one value: 200 draws from 10 s all within one 100 ms would be a bug.
        #expect(draws.max()! - draws.min()! > .milliseconds(100))
        #expect(GRPCServerConnectionHandler.jittered(timeout, by: 0) == timeout)
        #expect(GRPCServerConnectionHandler.jittered(timeout, by: -1) == timeout)
        #expect(GRPCServerConnectionHandler.jittered(timeout, by: 5) < .seconds(200))
    }
}

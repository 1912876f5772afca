import GRPCClient
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import GRPCServer

/// Per-address admission (``AddressAdmission``): the open-connection cap, the connection-rate
/// bucket and the price of abuse, on explicit times; then end to end, a server resetting
/// connections at accept.
@Suite struct AddressAdmissionTests {
    private func at(_ milliseconds: Int64) -> NIODeadline {
        .uptimeNanoseconds(UInt64(1_000_000_000 + milliseconds * 1_000_000))
    }

    private func admission(maxOpen: Int = 0, burst: Int = 0, rate: Int = 0, abuseCost: Int = 0, idle: Int = 65_536)
        -> AddressAdmission
    {
        var configuration = GRPCServerConfiguration()
        configuration.maxConnectionsPerAddress = maxOpen
        configuration.connectionBurstPerAddress = burst
        configuration.connectionRatePerAddress = rate
        configuration.abusiveConnectionCost = abuseCost
        return AddressAdmission(limits: .init(configuration), maxTrackedIdle: idle)
    }

    private func address(_ ip: String) throws -> SocketAddress { try SocketAddress(ipAddress: ip, port: 40_000) }

    @Test func openConnectionsPerAddressAreCappedAndFreedOnRelease() throws {
        let gate = admission(maxOpen: 2)
        let a = try address("10.0.0.1")
        guard case .admitted(let first?) = gate.admit(a, now: at(0)) else { Issue.record("first refused"); return }
        #expect(gate.admit(a, now: at(0)) != .refusedOpenLimit)
        #expect(gate.admit(a, now: at(0)) == .refusedOpenLimit)
        // Another address is not affected.
        #expect(gate.admit(try address("10.0.0.2"), now: at(0)) != .refusedOpenLimit)
        gate.release(first)
        #expect(gate.admit(a, now: at(1)) != .refusedOpenLimit)
    }

    @Test func newConnectionsPerAddressFollowTheBucket() throws {
        let gate = admission(burst: 3, rate: 10)
        let a = try address("10.0.0.1")
        for _ in 0..<3 { #expect(gate.admit(a, now: at(0)) != .refusedRate) }
        #expect(gate.admit(a, now: at(0)) == .refusedRate)
        // 10 per second: one more token after 100 ms, and refused knocks cost nothing.
        #expect(gate.admit(a, now: at(50)) == .refusedRate)
        #expect(gate.admit(a, now: at(100)) != .refusedRate)
        #expect(gate.admit(a, now: at(100)) == .refusedRate)
    }

    @Test func abuseCostsTheAddressTokensDownToMinusTheBurst() throws {
        let gate = admission(burst: 10, rate: 10, abuseCost: 50)
        let a = try address("10.0.0.1")
        #expect(gate.admit(a, now: at(0)) != .refusedRate)
        gate.penalise(a, now: at(0))
        // 9 tokens - 50 = -41, floored at -10: back to one token after 1.1 s.
        #expect(gate.admit(a, now: at(1000)) == .refusedRate)
        #expect(gate.admit(a, now: at(1100)) != .refusedRate)
    }

    @Test func ipv6AddressesShareTheirSlash64AndMappedIPv4CountsAsIPv4() throws {
        let gate = admission(maxOpen: 1)
        #expect(gate.admit(try address("2001:db8:1:2::1"), now: at(0)) != .refusedOpenLimit)
        #expect(gate.admit(try address("2001:db8:1:2:ffff::9"), now: at(0)) == .refusedOpenLimit)
        #expect(gate.admit(try address("2001:db8:1:3::1"), now: at(0)) != .refusedOpenLimit)
        #expect(gate.admit(try address("192.0.2.7"), now: at(0)) != .refusedOpenLimit)
        #expect(gate.admit(try address("::ffff:192.0.2.7"), now: at(0)) == .refusedOpenLimit)
    }

    @Test func zeroLimitsAdmitEverythingWithoutTracking() throws {
        let gate = admission()
        for _ in 0..<1000 { #expect(gate.admit(try address("10.0.0.1"), now: at(0)) == .admitted(nil)) }
        #expect(gate.trackedAddresses == 0)
    }

    @Test func addressesAtRestAreForgottenSoTheTableStaysBounded() throws {
        let gate = admission(burst: 5, rate: 1000, idle: 100)
        for i in 0..<20_000 {
            let ip = "10.\(i >> 16 & 255).\(i >> 8 & 255).\(i & 255)"
            guard case .admitted(let key?) = gate.admit(try address(ip), now: at(Int64(i))) else {
                Issue.record("refused \(ip)")
                return
            }
            gate.release(key)
        }
        // Each address took one token and got it back within a few milliseconds: at rest, forgotten.
        #expect(gate.trackedAddresses <= 200)
    }
}

@Suite struct AddressAdmissionServerTests {
    @Test func connectionsOverTheAddressBurstAreResetAtAccept() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.connectionBurstPerAddress = 2
        configuration.connectionRatePerAddress = 1
        var router = GRPCRouter()
        router.register(service: "test.Raw", method: "Echo", .unary { _, request in .response(request) })
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        let server = try await GRPCServer.start(
            host: "127.0.0.1", port: 0, router: router, configuration: configuration, group: group, logger: logger)
        let port = server.localAddress!.port!
        // Ten connections back to back. Burst 2, then one token a second: at most 2 + (seconds elapsed, rounded
        // up) are admitted, however slowly a loaded machine runs this test; the rest are reset before the server
        // reads a byte, so their calls cannot succeed. (Elapsed is taken after the calls: a connection is admitted
        // or refused when the server accepts it, which may be later than the client's connect.)
        let started = NIODeadline.now()
        var clients: [GRPCClientConnection] = []
        for _ in 0..<10 {
            if let client = try? await GRPCClientConnection.connect(host: "127.0.0.1", port: port, group: group) {
                clients.append(client)
            }
        }
        var answered: [GRPCClientConnection] = []
        for client in clients {
            let result = try? await client.unary(path: "/test.Raw/Echo", request: ByteBuffer(string: "x")).get()
            if result?.status.code == .ok { answered.append(client) }
        }
        let elapsed = Double((NIODeadline.now() - started).nanoseconds) / 1e9
        #expect(answered.count >= 2, "the burst is admitted")
        #expect(answered.count <= 2 + Int(elapsed.rounded(.up)), "\(answered.count) admitted in \(elapsed) s")
        #expect(server.connectionCount == answered.count)
        // The admitted ones are untouched.
        let reply = try await answered[0].unaryResponse(path: "/test.Raw/Echo", request: ByteBuffer(string: "still"))
        #expect(String(buffer: reply) == "still")
        for client in clients { await client.close() }
        try await server.close()
        try await group.shutdownGracefully()
    }
}

import Foundation
import GRPCClient
import Logging
import NIOCore
import NIOPosix
import TestSupport
import Testing

@testable import GRPCServer

/// TLS between our server and our client (the grpcio side is Tests/Interop/test_tls.py): mutual
/// TLS identities reaching handlers, handshake failures surfacing at connect, the handshake
/// timeout, and reloads that refuse bad files while every connection keeps working.
@Suite struct TLSTests {
    private static let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Echo, and `Peer`: the names of the caller's verified certificate ("none" without one).
    private static func router() -> GRPCRouter {
        var router = GRPCRouter()
        router.register(service: "test.TLS", method: "Echo", .unary { _, request in .response(request) })
        router.register(
            service: "test.TLS", method: "Peer",
            .unary { context, _ in .response(ByteBuffer(string: context.tlsPeer?.summary ?? "none")) })
        return router
    }

    private static func withServer(
        _ credentials: ServerTLSCredentials, handshakeTimeout: TimeAmount = .seconds(10),
        _ body: (_ port: Int, _ group: any EventLoopGroup) async throws -> Void
    ) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var configuration = GRPCServerConfiguration()
        configuration.tls = credentials
        configuration.tlsHandshakeTimeout = handshakeTimeout
        let server = try await GRPCServer.start(
            host: "127.0.0.1", port: 0, router: router(), configuration: configuration, group: group,
            logger: quietLogger)
        do {
            try await body(server.localAddress!.port!, group)
        } catch {
            try await server.close()
            try await group.shutdownGracefully()
            throw error
        }
        try await server.close()
        try await group.shutdownGracefully()
    }

    private static func client(
        _ pki: TestPKI, cert: String? = nil, ca: String = "ca.crt"
    ) throws -> ClientTLSCredentials {
        try ClientTLSCredentials(
            ClientTLSOptions(
                trustRoots: pki.file(ca), certificateChain: cert.map { pki.file("\($0).crt") },
                privateKey: cert.map { pki.file("\($0).key") }))
    }

    private static func call(_ connection: GRPCClientConnection, _ method: String) async throws -> String {
        let result = try await connection.unary(path: "/test.TLS/\(method)", request: ByteBuffer(string: "hi")).get()
        return String(buffer: try result.unaryResponse())
    }

    @Test func mutualTLSCallsCarryTheClientCertificateNames() async throws {
        let pki = try TestPKI.shared()
        let files = ServerTLSFiles(
            certificateChain: pki.file("server.crt"), privateKey: pki.file("server.key"), clientCA: pki.file("ca.crt"))
        try await Self.withServer(try ServerTLSCredentials(files: files)) { port, group in
            let connection = try await GRPCClientConnection.connect(
                host: "127.0.0.1", port: port, group: group, tls: try Self.client(pki, cert: "client"))
            #expect(try await Self.call(connection, "Echo") == "hi")
            #expect(try await Self.call(connection, "Peer") == "cn:edge-client,uri:spiffe://rankd.test/edge")
            await connection.close()
            // No client certificate, or one from another CA: the server refuses it (under TLS 1.3
            // after the client's side of the handshake is done) and connect says why.
            for (cert, reason) in [(nil, "CERTIFICATE_REQUIRED"), ("client-other-ca", "UNKNOWN_CA")] {
                do {
                    _ = try await GRPCClientConnection.connect(
                        host: "127.0.0.1", port: port, group: group, tls: try Self.client(pki, cert: cert))
                    Issue.record("client certificate \(cert ?? "none") was accepted")
                } catch let error as ClientTLSError {
                    #expect(error.description.contains(reason), "\(error)")
                }
            }
        }
    }

    @Test func tlsWithoutClientCAsHasNoPeerIdentityAndRefusesUntrustedServers() async throws {
        let pki = try TestPKI.shared()
        let files = ServerTLSFiles(certificateChain: pki.file("server.crt"), privateKey: pki.file("server.key"))
        try await Self.withServer(try ServerTLSCredentials(files: files)) { port, group in
            let connection = try await GRPCClientConnection.connect(
                host: "127.0.0.1", port: port, group: group, tls: try Self.client(pki))
            #expect(try await Self.call(connection, "Peer") == "none")
            await connection.close()
            do {
                _ = try await GRPCClientConnection.connect(
                    host: "127.0.0.1", port: port, group: group, tls: try Self.client(pki, ca: "other-ca.crt"))
                Issue.record("a server whose CA the client does not trust was accepted")
            } catch let error as ClientTLSError {
                #expect(error.description.contains("TLS handshake failed"))
                #expect(error.description.contains("CERTIFICATE_VERIFY_FAILED"))
            }
        }
    }

    @Test func silentClientIsDisconnectedAtTheHandshakeTimeout() async throws {
        let pki = try TestPKI.shared()
        let files = ServerTLSFiles(certificateChain: pki.file("server.crt"), privateKey: pki.file("server.key"))
        try await Self.withServer(try ServerTLSCredentials(files: files), handshakeTimeout: .milliseconds(200)) {
            port, group in
            let started = ContinuousClock.now
            let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
            // Never hang the suite: without the server's timeout, this closes the socket at 30 s
            // (generous: a loaded CI machine delays timers by seconds) and the expectation fails.
            let backstop = channel.eventLoop.scheduleTask(in: .seconds(30)) { channel.close(promise: nil) }
            try await channel.closeFuture.get()
            backstop.cancel()
            let waited = ContinuousClock.now - started
            #expect(waited >= .milliseconds(150) && waited < .seconds(30), "closed after \(waited)")
        }
    }

    @Test func reloadRefusesBadFilesAndNeverDropsAConnection() async throws {
        let pki = try TestPKI.shared()
        let live = FileManager.default.temporaryDirectory.appendingPathComponent("rankd-tls-live-\(UUID())").path
        try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: live) }
        func install(_ name: String, _ suffixes: [String] = ["crt", "key"]) throws {
            for suffix in suffixes {
                let target = "\(live)/live.\(suffix)"
                try? FileManager.default.removeItem(atPath: target)
                try FileManager.default.copyItem(atPath: pki.file("\(name).\(suffix)"), toPath: target)
            }
        }
        try install("server")
        let credentials = try ServerTLSCredentials(
            files: ServerTLSFiles(certificateChain: "\(live)/live.crt", privateKey: "\(live)/live.key"))
        let first = credentials.summary
        try await Self.withServer(credentials) { port, group in
            let tls = try Self.client(pki)
            let open = try await GRPCClientConnection.connect(host: "127.0.0.1", port: port, group: group, tls: tls)
            #expect(try await Self.call(open, "Echo") == "hi")
            #expect(credentials.reloadIfChanged() == nil)
            #expect(credentials.reload() == .unchanged)

            // The new certificate without its key: refused, once per change when polled.
            try install("server2", ["crt"])
            let serving = credentials.context
            guard case .refused(let mismatch) = credentials.reloadIfChanged() else {
                Issue.record("a certificate with another certificate's key was accepted")
                return
            }
            #expect(mismatch.description.contains("does not match the certificate"))
            #expect(credentials.reloadIfChanged() == nil)
            #expect(credentials.context === serving && credentials.summary == first)
            #expect(try await Self.call(open, "Echo") == "hi")

            // Its key arrives: new connections get the new certificate, the open one keeps working.
            try install("server2", ["key"])
            guard case .reloaded(let second) = credentials.reloadIfChanged() else {
                Issue.record("the new certificate and key were not loaded")
                return
            }
            #expect(second.serial != first.serial && second.subject == "rankd-test")
            #expect(credentials.context !== serving)
            let later = try await GRPCClientConnection.connect(host: "127.0.0.1", port: port, group: group, tls: tls)
            #expect(try await Self.call(later, "Echo") == "hi")
            #expect(try await Self.call(open, "Echo") == "hi")

            // Expired, then not PEM at all: refused; SIGHUP (reload) reports again, polling does not.
            try install("server-expired")
            guard case .refused(let expired) = credentials.reloadIfChanged() else {
                Issue.record("an expired certificate was accepted")
                return
            }
            #expect(expired.description.contains("expired at 2020-01-02T00:00:00Z"))
            #expect(credentials.reloadIfChanged() == nil)
            #expect(credentials.reload() == .refused(expired))
            try Data("not a certificate".utf8).write(to: URL(fileURLWithPath: "\(live)/live.crt"))
            guard case .refused(let garbage) = credentials.reload() else {
                Issue.record("a file without a certificate was accepted")
                return
            }
            #expect(garbage.description.contains("live.crt: not a PEM certificate"))
            #expect(credentials.summary == second)
            let last = try await GRPCClientConnection.connect(host: "127.0.0.1", port: port, group: group, tls: tls)
            #expect(try await Self.call(last, "Echo") == "hi")
            for connection in [open, later, last] { await connection.close() }
        }
    }

    @Test func badStartupFilesNameTheFile() throws {
        let pki = try TestPKI.shared()
        #expect(throws: TLSFileError("TLS certificate file /nonexistent.crt: cannot read it")) {
            try ServerTLSCredentials(
                files: ServerTLSFiles(certificateChain: "/nonexistent.crt", privateKey: pki.file("server.key")))
        }
        #expect(
            throws: TLSFileError(
                "TLS private key file \(pki.file("client.key")): does not match the certificate in \(pki.file("server.crt"))"
            )
        ) {
            try ServerTLSCredentials(
                files: ServerTLSFiles(certificateChain: pki.file("server.crt"), privateKey: pki.file("client.key")))
        }
        #expect(throws: TLSFileError("a TLS client certificate needs its private key")) {
            try ClientTLSCredentials(ClientTLSOptions(certificateChain: pki.file("client.crt")))
        }
        #expect(try ClientTLSCredentials.forFlags(tls: false, ClientTLSOptions()) == nil)
    }

    @Test func certificateNamesParseAsKindAndValue() throws {
        #expect(try CertificateName(parsing: "uri:spiffe://prod/publisher") == .uri("spiffe://prod/publisher"))
        #expect(try CertificateName(parsing: "CN:snapshot-publisher") == .commonName("snapshot-publisher"))
        #expect(try CertificateName(parsing: "dns:publisher.internal") == .dns("publisher.internal"))
        for bad in ["publisher", "dns:", "ip:10.0.0.1", ":x"] {
            #expect(throws: CertificateNameError.self) { try CertificateName(parsing: bad) }
        }
        let peer = TLSPeerIdentity(commonName: "a", dnsNames: ["b.example"], uris: ["spiffe://c"])
        #expect(peer.carries(.commonName("a")) && peer.carries(.dns("b.example")) && peer.carries(.uri("spiffe://c")))
        #expect(!peer.carries(.dns("a")) && !peer.carries(.commonName("b.example")))
    }
}

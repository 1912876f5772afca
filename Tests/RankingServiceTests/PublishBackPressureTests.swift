import Foundation
import GRPCClient
import GRPCServer
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RankingAPI
import RankingEngine
import RankingModel
import RankingService
import SnapshotLifecycle
import TestSupport
import Testing

private let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// A Publish whose disk is slower than the network must slow the uploader (HTTP/2 flow control),
/// never the event loop that receives it: that loop serves other connections' calls too.
@Suite struct PublishBackPressureTests {
    @Test func slowPublishDiskThrottlesTheUploaderNotTheEventLoop() async throws {
        let fixture = try SnapshotRootFixture()
        let built = try fixture.build("v1")
        let store = try SnapshotStore(root: fixture.root, registry: SnapshotRegistry<ServingSnapshot>())
        let header = try fixture.header(built)
        let chunks = fixture.chunks(built, header: header, size: 1024)
        try #require(chunks.count >= 24, "the snapshot must need more chunks than the old 16-chunk queue")

        let chunksWritten = NIOLockedValueBox(0)
        var router = GRPCRouter()
        SnapshotAdminService.register(
            in: &router, store: store,
            auth: BearerTokenAuth(token: "secret", scope: "admin", howToConfigure: "test"), logger: quietLogger,
            beforeChunkWrite: {
                // A slow disk; slower under sanitizers, so the probes below (slowed too) still run
                // while the upload is throttled.
                Thread.sleep(forTimeInterval: 0.05 * Double(TimingScale.factor))
                chunksWritten.withLockedValue { $0 += 1 }
            })
        EchoService.register(in: &router)
        var configuration = GRPCServerConfiguration()
        // Small windows, so this small snapshot is throttled by flow control as a large one would be.
        configuration.initialStreamWindowSize = 16 * 1024
        configuration.deferredConsumptionLimit = 4 * 1024
        // One loop serves both connections: a blocked loop would delay the probe.
        let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await GRPCServer.start(
            host: "127.0.0.1", port: 0, router: router, configuration: configuration, group: serverGroup,
            logger: quietLogger)
        let port = server.localAddress!.port!
        let uploader = try await GRPCClientConnection.connect(host: "127.0.0.1", port: port, group: clientGroup)
        let prober = try await GRPCClientConnection.connect(host: "127.0.0.1", port: port, group: clientGroup)

        // Queue the whole upload at once: the client sends as fast as the server's windows allow.
        let call = uploader.startCall(
            path: "/ranking.v1.SnapshotAdmin/Publish", metadata: [("authorization", "Bearer secret")])
        call.send(AdminCodec.encodePublishRequest(.header(header)))
        for chunk in chunks { call.send(AdminCodec.encodePublishRequest(.chunk(chunk))) }
        call.finishRequest()

        while chunksWritten.withLockedValue({ $0 }) < 2 { try await Task.sleep(for: .milliseconds(5)) }
        var slowest = Duration.zero
        let probe = EchoCodec.encodeRequest(.init(text: "ping"), allocator: ByteBufferAllocator())
        for _ in 0..<10 {
            let started = ContinuousClock.now
            let reply = try await prober.unaryResponse(path: "/rankd.testing.v1.Echo/Unary", request: probe)
            slowest = max(slowest, ContinuousClock.now - started)
            #expect(try EchoCodec.decodeResponse(reply).text == "ping")
            try await Task.sleep(for: .milliseconds(20))
        }
        let writtenDuringProbes = chunksWritten.withLockedValue { $0 }

        let result = try await call.result.get()
        await prober.close()
        await uploader.close()
        try await server.close()
        try await serverGroup.shutdownGracefully()
        try await clientGroup.shutdownGracefully()

        #expect(
            slowest < TimingScale.scaled(.milliseconds(200)),
            "an Echo call on another connection took \(slowest) during the upload")
        #expect(writtenDuringProbes < chunks.count, "the probes must run while the upload is still throttled")
        let published = try AdminCodec.decodePublishResponse(try result.unaryResponse())
        #expect(published.version == "v1" && !published.alreadyPresent)
        #expect(chunksWritten.withLockedValue { $0 } == chunks.count)
        // The store verified every checksum before the rename; the bytes must also be the sender's.
        for name in header.files.map(\.name) + ["manifest.json"] {
            let sent = FileManager.default.contents(atPath: built + "/" + name)
            let stored = FileManager.default.contents(atPath: fixture.root + "/v1/" + name)
            #expect(sent != nil && sent == stored, "\(name) differs after the upload")
        }
    }
}

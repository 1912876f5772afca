import GRPCCore
@_spi(Testing) import GRPCServer
import Logging
import NIOCore
import NIOEmbedded
import RankingAPI
import RankingModel
import RankingService
import TestSupport

/// `server-connection`: raw client bytes after the HTTP/2 client preface, fed to one server
/// connection (the real handler: nghttp2 session, HPACK, flow control, streams, gRPC framing, the
/// Rank and Echo methods) in an `EmbeddedChannel`, so no socket and no thread is involved. The
/// first byte sets how the bytes are split into reads (0: one read). Afterwards time is advanced
/// past every deadline and the idle timeout, and the connection is closed. Checked: what the server
/// wrote is a sequence of whole HTTP/2 frames, starting with its SETTINGS.
enum ServerConnectionTarget {
    static let router: GRPCRouter = {
        var router = GRPCRouter()
        EchoService.register(in: &router)
        RankerService.register(
            in: &router, engine: FuzzFixture.shared.engine,
            logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
        return router
    }()

    static let configuration: GRPCServerConfiguration = {
        var configuration = GRPCServerConfiguration()
        configuration.maxReceiveMessageSize = 64 * 1024
        configuration.maxConcurrentStreams = 16
        // Deterministic: an input that crashes must crash again on replay, at the same virtual time.
        configuration.idleTimeoutJitter = 0
        return configuration
    }()

    static func run(_ bytes: UnsafeRawBufferPointer) {
        var cursor = ByteCursor(bytes)
        let step = Int(cursor.byte())
        let input = HTTP2Frames.preface + Array(cursor.rest())
        let channel = EmbeddedChannel()
        let handler = GRPCServer.makeConnectionHandler(
            router: router, configuration: configuration,
            logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))
        var output: [UInt8] = []
        func drain() {
            while let buffer = try? channel.readOutbound(as: ByteBuffer.self) { output += Array(buffer: buffer) }
        }
        do {
            try channel.pipeline.syncOperations.addHandler(handler)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        } catch {
            return fuzzCheck(false, "cannot set up the embedded connection: \(error)")
        }
        var offset = 0
        while offset < input.count, channel.isActive {
            let end = step == 0 ? input.count : min(input.count, offset + step)
            // A read error closes the connection; that is the server's answer to bad bytes.
            _ = try? channel.writeInbound(ByteBuffer(bytes: input[offset..<end]))
            offset = end
            channel.embeddedEventLoop.run()
            drain()
        }
        channel.embeddedEventLoop.advanceTime(by: .seconds(3600))
        drain()
        _ = try? channel.finish(acceptAlreadyClosed: true)
        drain()
        checkFrames(output)
    }

    /// The server's bytes are whole frames (9-byte header + payload), the first one SETTINGS.
    static func checkFrames(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        guard let frames = HTTP2Frames.parse(bytes) else {
            return fuzzCheck(false, "server output ends inside a frame")
        }
        fuzzCheck(
            frames.first?.type == HTTP2Frames.Kind.settings.rawValue, "server output does not start with SETTINGS")
        for frame in frames {
            fuzzCheck(
                frame.payload.count <= 16_384,
                "server sent a \(frame.payload.count)-byte frame past the default maximum")
        }
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        let rank = Array(
            buffer: RankCodec.encodeRequest(
                {
                    var request = RankRequest()
                    request.userID = FuzzFixture.shared.userIDs.first ?? "u"
                    request.k = 3
                    return request
                }()))
        let echo = Array(
            buffer: EchoCodec.encodeRequest(.init(text: "hi", payload: [1, 2, 3], count: 3), allocator: .init()))
        let delayed = Array(
            buffer: EchoCodec.encodeRequest(.init(text: "slow", delayMilliseconds: 50), allocator: .init()))
        let settings = HTTP2Frames.settings([(3, 100), (4, 65_535), (6, 16_384)])
        func call(_ stream: UInt32, _ path: String, _ message: [UInt8], extra: [(String, String)] = []) -> [UInt8] {
            HTTP2Frames.headers(stream, HTTP2Frames.requestHeaders(path: path) + extra)
                + HTTP2Frames.data(stream, HTTP2Frames.grpcMessage(message), endStream: true)
        }
        var streamingCollect = HTTP2Frames.headers(
            1, HTTP2Frames.requestHeaders(path: "/rankd.testing.v1.Echo/Collect"))
        for index in 0..<3 {
            streamingCollect += HTTP2Frames.data(1, HTTP2Frames.grpcMessage(echo), endStream: index == 2)
        }
        var rapidReset: [UInt8] = settings
        for stream in stride(from: UInt32(1), through: 41, by: 2) {
            rapidReset += HTTP2Frames.headers(stream, HTTP2Frames.requestHeaders(path: "/ranking.v1.Ranker/Rank"))
            rapidReset += HTTP2Frames.frame(type: 3, flags: 0, stream: stream, payload: [0, 0, 0, 8])
        }
        let block = HTTP2Frames.hpack(HTTP2Frames.requestHeaders(path: "/ranking.v1.Ranker/Rank"))
        let third = block.count / 3
        let continuation =
            HTTP2Frames.frame(type: 1, flags: 0, stream: 1, payload: Array(block[..<third]))
            + HTTP2Frames.frame(type: 9, flags: 0, stream: 1, payload: Array(block[third..<2 * third]))
            + HTTP2Frames.frame(type: 9, flags: 4, stream: 1, payload: Array(block[(2 * third)...]))
            + HTTP2Frames.data(1, HTTP2Frames.grpcMessage(rank), endStream: true)
        let control =
            HTTP2Frames.frame(type: 6, flags: 0, stream: 0, payload: Array(repeating: 7, count: 8))
            + HTTP2Frames.frame(type: 4, flags: 1, stream: 0, payload: [])
            + HTTP2Frames.frame(type: 8, flags: 0, stream: 0, payload: [0, 1, 0, 0])
            + HTTP2Frames.frame(type: 2, flags: 0, stream: 3, payload: [0, 0, 0, 1, 16])
            + HTTP2Frames.frame(type: 7, flags: 0, stream: 0, payload: [0, 0, 0, 0, 0, 0, 0, 0])
        return [
            ("rank-unary", [0] + settings + call(1, "/ranking.v1.Ranker/Rank", rank)),
            ("rank-byte-at-a-time", [1] + settings + call(1, "/ranking.v1.Ranker/Rank", rank)),
            (
                "echo-deadline",
                [0] + settings + call(1, "/rankd.testing.v1.Echo/Unary", delayed, extra: [("grpc-timeout", "10m")])
            ),
            ("echo-expand", [7] + settings + call(1, "/rankd.testing.v1.Echo/Expand", echo)),
            ("echo-collect", [0] + settings + streamingCollect),
            (
                "unknown-method-and-metadata",
                [0] + settings + call(1, "/nope.Svc/M", [], extra: [("x-trace", "abc"), ("grpc-encoding", "gzip")])
            ),
            ("rapid-reset", [0] + rapidReset),
            ("continuation", [0] + settings + continuation),
            ("control-frames", [0] + settings + control),
        ]
    }
}

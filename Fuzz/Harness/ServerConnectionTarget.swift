import GRPCCore
@_spi(Testing) import GRPCServer
import Logging
import NIOCore
import NIOEmbedded
import RankingAPI
import RankingModel
import RankingService

/// `server-connection`: raw client bytes after the HTTP/2 client preface, fed to one server
/// connection (the real handler: nghttp2 session, HPACK, flow control, streams, gRPC framing, the
/// Rank and Echo methods) in an `EmbeddedChannel`, so no socket and no thread is involved. The
/// first byte sets how the bytes are split into reads (0: one read). Afterwards time is advanced
/// past every deadline and the idle timeout, and the connection is closed. Checked: what the server
/// wrote is a sequence of whole HTTP/2 frames, starting with its SETTINGS.
enum ServerConnectionTarget {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

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
        return configuration
    }()

    static func run(_ bytes: UnsafeRawBufferPointer) {
        var cursor = ByteCursor(bytes)
        let step = Int(cursor.byte())
        let input = preface + Array(cursor.rest())
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
        fuzzCheck(bytes.count >= 9 && bytes[3] == 4, "server output does not start with SETTINGS")
        var offset = 0
        while offset < bytes.count {
            fuzzCheck(bytes.count - offset >= 9, "server output ends inside a frame header")
            let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
            fuzzCheck(length <= 16_384, "server sent a \(length)-byte frame beyond the default maximum")
            offset += 9 + length
        }
        fuzzCheck(offset == bytes.count, "server output ends inside a frame payload")
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

/// Hand-built HTTP/2 client frames for seeds (RFC 9113 §4.1) with HPACK literals that are
/// never indexed and not Huffman-coded (RFC 7541 §6.2.3), so a mutation of a name or value
/// stays a name or value.
enum HTTP2Frames {
    static func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags]
            + [UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)]
            + payload
    }

    static func settings(_ values: [(UInt16, UInt32)]) -> [UInt8] {
        var payload: [UInt8] = []
        for (id, value) in values {
            payload += [UInt8(id >> 8), UInt8(id & 0xFF)]
            payload += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
        }
        return frame(type: 4, flags: 0, stream: 0, payload: payload)
    }

    static func requestHeaders(path: String) -> [(String, String)] {
        [
            (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers"),
        ]
    }

    static func hpackInteger(_ value: Int, prefixBits: Int, firstByte: UInt8) -> [UInt8] {
        let limit = (1 << prefixBits) - 1
        if value < limit { return [firstByte | UInt8(value)] }
        var out = [firstByte | UInt8(limit)]
        var rest = value - limit
        while rest >= 128 {
            out.append(UInt8(rest & 0x7F) | 0x80)
            rest >>= 7
        }
        out.append(UInt8(rest))
        return out
    }

    static func hpack(_ headers: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (name, value) in headers {
            out.append(0x10)  // literal never indexed, new name
            out += hpackInteger(name.utf8.count, prefixBits: 7, firstByte: 0) + Array(name.utf8)
            out += hpackInteger(value.utf8.count, prefixBits: 7, firstByte: 0) + Array(value.utf8)
        }
        return out
    }

    static func headers(_ stream: UInt32, _ headers: [(String, String)], endStream: Bool = false) -> [UInt8] {
        frame(type: 1, flags: 0x4 | (endStream ? 0x1 : 0), stream: stream, payload: hpack(headers))
    }

    static func data(_ stream: UInt32, _ payload: [UInt8], endStream: Bool) -> [UInt8] {
        frame(type: 0, flags: endStream ? 0x1 : 0, stream: stream, payload: payload)
    }

    static func grpcMessage(_ message: [UInt8]) -> [UInt8] {
        let count = message.count
        return [0, UInt8(count >> 24 & 0xFF), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)]
            + message
    }
}

/// Hand-built HTTP/2 frames for protocol tests and fuzz seeds (RFC 9113 §4.1): a test can send what
/// a conforming client library refuses to. Header blocks use HPACK literals that are never indexed
/// and not Huffman-coded (RFC 7541 §6.2.3), so a fuzzer's mutation of a name or value stays one.
public enum HTTP2Frames {
    /// The client connection preface (RFC 9113 §3.4).
    public static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    /// Frame types used by the tests.
    public enum Kind: UInt8 {
        case data = 0, headers = 1, rstStream = 3, settings = 4, ping = 6, goAway = 7, windowUpdate = 8
        case continuation = 9
    }

    /// One frame: 9-byte header, then `payload`.
    public static func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags]
            + [UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)]
            + payload
    }

    /// A SETTINGS frame with `(identifier, value)` entries.
    public static func settings(_ values: [(UInt16, UInt32)]) -> [UInt8] {
        var payload: [UInt8] = []
        for (id, value) in values {
            payload += [UInt8(id >> 8), UInt8(id & 0xFF)]
            payload += [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
        }
        return frame(type: Kind.settings.rawValue, flags: 0, stream: 0, payload: payload)
    }

    /// The headers of a gRPC request for `path`.
    public static func requestHeaders(path: String) -> [(String, String)] {
        [
            (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers"),
        ]
    }

    /// An HPACK integer with a `prefixBits`-bit prefix in `firstByte` (RFC 7541 §5.1).
    public static func hpackInteger(_ value: Int, prefixBits: Int, firstByte: UInt8) -> [UInt8] {
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

    /// A header block of never-indexed literals.
    public static func hpack(_ headers: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (name, value) in headers {
            out.append(0x10)  // literal never indexed, new name
            out += hpackInteger(name.utf8.count, prefixBits: 7, firstByte: 0) + Array(name.utf8)
            out += hpackInteger(value.utf8.count, prefixBits: 7, firstByte: 0) + Array(value.utf8)
        }
        return out
    }

    /// A HEADERS frame with END_HEADERS (and END_STREAM if asked).
    public static func headers(_ stream: UInt32, _ headers: [(String, String)], endStream: Bool = false) -> [UInt8] {
        frame(type: Kind.headers.rawValue, flags: 0x4 | (endStream ? 0x1 : 0), stream: stream, payload: hpack(headers))
    }

    /// A DATA frame.
    public static func data(_ stream: UInt32, _ payload: [UInt8], endStream: Bool) -> [UInt8] {
        frame(type: Kind.data.rawValue, flags: endStream ? 0x1 : 0, stream: stream, payload: payload)
    }

    /// `message` with its 5-byte gRPC prefix (uncompressed).
    public static func grpcMessage(_ message: [UInt8]) -> [UInt8] {
        let count = message.count
        return [0, UInt8(count >> 24 & 0xFF), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)]
            + message
    }

    /// Splits a server's bytes into frames; nil if they do not end on a frame boundary.
    public static func parse(_ bytes: [UInt8]) -> [(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8])]? {
        var frames: [(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8])] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 9 else { return nil }
            let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
            guard bytes.count - offset - 9 >= length else { return nil }
            let stream = bytes[offset + 5..<offset + 9].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF
            frames.append(
                (bytes[offset + 3], bytes[offset + 4], stream, Array(bytes[offset + 9..<offset + 9 + length])))
            offset += 9 + length
        }
        return frames
    }

    /// The error code of the first GOAWAY among `bytes`' frames, if there is one.
    public static func goAwayCode(in bytes: [UInt8]) -> UInt32? {
        guard let goAway = parse(bytes)?.first(where: { $0.type == Kind.goAway.rawValue }), goAway.payload.count >= 8
        else { return nil }
        return goAway.payload[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }
}

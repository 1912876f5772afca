package import CNGHTTP2

/// A list of HTTP/2 header fields laid out for nghttp2: all names and values in one byte array
/// and an `nghttp2_nv` array pointing into it. nghttp2 copies what it is given during the submit
/// call, so a block only has to live across that call — or forever, for the constant blocks
/// (response headers, OK trailers) that the hot path reuses without allocating.
package final class HeaderBlock: @unchecked Sendable {
    // Immutable after init; the pointers are into `storage`, which is never resized.
    private let storage: UnsafeMutableRawBufferPointer
    private let fields: UnsafeMutablePointer<nghttp2_nv>
    package let count: Int

    /// Builds a block from `(name, value)` pairs; names must already be lower-case.
    package init(_ pairs: [(name: String, value: [UInt8])]) {
        let total = pairs.reduce(0) { $0 + $1.name.utf8.count + $1.value.count }
        storage = .allocate(byteCount: max(total, 1), alignment: 1)
        fields = .allocate(capacity: max(pairs.count, 1))
        count = pairs.count
        var offset = 0
        for (index, pair) in pairs.enumerated() {
            let nameStart = offset
            for byte in pair.name.utf8 {
                storage[offset] = byte
                offset += 1
            }
            let valueStart = offset
            for byte in pair.value {
                storage[offset] = byte
                offset += 1
            }
            let base = storage.baseAddress!.assumingMemoryBound(to: UInt8.self)
            fields[index] = nghttp2_nv(
                name: base + nameStart, value: base + valueStart, namelen: valueStart - nameStart,
                valuelen: pair.value.count, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
        }
    }

    /// Convenience for string values.
    package convenience init(_ pairs: [(String, String)]) {
        self.init(pairs.map { (name: $0.0, value: Array($0.1.utf8)) })
    }

    deinit {
        storage.deallocate()
        fields.deallocate()
    }

    package var nva: UnsafePointer<nghttp2_nv> { UnsafePointer(fields) }

    /// The headers that begin every successful gRPC response.
    package static let grpcResponse = HeaderBlock([(":status", "200"), ("content-type", "application/grpc")])
    /// The trailers of a successful call.
    package static let okTrailers = HeaderBlock([("grpc-status", "0")])

    /// Trailers for `status`; OK reuses the constant block.
    package static func trailers(for status: GRPCStatus) -> HeaderBlock {
        if status.code == .ok && status.message.isEmpty { return okTrailers }
        var pairs: [(name: String, value: [UInt8])] = [("grpc-status", Array(String(status.code.rawValue).utf8))]
        if !status.message.isEmpty {
            pairs.append(("grpc-message", GRPCPercentEncoding.encode(status.message)))
        }
        return HeaderBlock(pairs)
    }

    /// A Trailers-Only response: the status in the one and only HEADERS frame.
    package static func trailersOnly(for status: GRPCStatus) -> HeaderBlock {
        var pairs: [(name: String, value: [UInt8])] = [
            (":status", Array("200".utf8)), ("content-type", Array("application/grpc".utf8)),
            ("grpc-status", Array(String(status.code.rawValue).utf8)),
        ]
        if !status.message.isEmpty {
            pairs.append(("grpc-message", GRPCPercentEncoding.encode(status.message)))
        }
        if status.code == .unimplemented {
            // Tells a client that tried compression which encodings it may use instead.
            pairs.append(("grpc-accept-encoding", Array("identity".utf8)))
        }
        return HeaderBlock(pairs)
    }
}

internal import CNGHTTP2
import GRPCCore
import Glibc
import NIOCore

/// What nghttp2 reports about a call's stream: response headers and trailers, DATA (deframed into messages), the
/// stream's close, and the request body bytes it pulls.
extension GRPCClientConnectionHandler {
    func header(_ stream: ClientStream, name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        if Self.equal(name, ":status") {
            stream.httpStatus = Self.decimal(value) ?? 0
        } else if Self.equal(name, "grpc-status") {
            stream.grpcStatus = Self.decimal(value)
        } else if Self.equal(name, "grpc-message") {
            stream.grpcMessage = GRPCPercentEncoding.decode(value)
        } else if name.first != UInt8(ascii: ":") {
            // The one value every response has: a constant string instead of a heap copy.
            let text =
                Self.equal(value, Self.grpcContentType) ? Self.grpcContentType : String(decoding: value, as: UTF8.self)
            stream.metadata.append((String(decoding: name, as: UTF8.self), text))
        }
    }

    private static let grpcContentType = "application/grpc"

    /// Whether the header bytes are `text` (one length check and a memcmp per header).
    private static func equal(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        bytes.count == text.utf8CodeUnitCount
            && (bytes.count == 0 || memcmp(bytes.baseAddress!, text.utf8Start, bytes.count) == 0)
    }

    private static func equal(_ bytes: UnsafeRawBufferPointer, _ text: String) -> Bool {
        var text = text
        return text.withUTF8 { utf8 in
            bytes.count == utf8.count
                && (bytes.count == 0 || memcmp(bytes.baseAddress!, utf8.baseAddress!, bytes.count) == 0)
        }
    }

    /// A non-negative decimal header value (`:status`, `grpc-status`); nil if it is not one.
    private static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 9 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    func data(_ stream: ClientStream, _ bytes: UnsafeRawBufferPointer) {
        guard stream.failure == nil else { return }
        stream.deframer.append(bytes)
        do throws(GRPCStatus) {
            while let message = try stream.deframer.next() {
                stream.messages.append(message)
            }
        } catch {
            stream.failure = GRPCStatus(.internal, "bad response framing: \(error.message)")
        }
    }

    func closed(_ stream: ClientStream, errorCode: UInt32) {
        if stream.grpcStatus == nil && stream.failure == nil && errorCode != HTTP2ErrorCode.noError {
            let code: GRPCStatus.Code = errorCode == HTTP2ErrorCode.refusedStream ? .unavailable : .internal
            stream.failure = GRPCStatus(code, "stream reset by server (HTTP/2 error \(errorCode))")
        }
        complete(stream)
        calls.removeValue(forKey: stream.key)
    }

    func readRequest(
        _ stream: ClientStream, into buffer: UnsafeMutablePointer<UInt8>, length: Int,
        flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        let target = UnsafeMutableRawPointer(buffer)
        var count = 0
        // The first message's prefix (flag 0, big-endian length), then the message itself.
        while stream.prefixLeft > 0 && count < length {
            let index = 5 - stream.prefixLeft
            let byte = index == 0 ? 0 : UInt8(truncatingIfNeeded: stream.firstMessageLength >> (8 * (4 - index)))
            target.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
            count += 1
            stream.prefixLeft -= 1
        }
        if count < length, var message = stream.firstMessage {
            count += Self.move(from: &message, to: target + count, limit: length - count)
            stream.firstMessage = message.readableBytes > 0 ? message : nil
        }
        if count < length {
            count += Self.move(from: &stream.outbound, to: target + count, limit: length - count)
        }
        let unsent = stream.unsentBytes
        if unsent < Self.sendWatermark, !stream.drainWaiters.isEmpty {
            for waiter in stream.drainWaiters { waiter.succeed() }
            stream.drainWaiters = []
        }
        if unsent == 0 {
            // Reuse the storage (a buffer never written to shares an empty one: leave it alone).
            if stream.outbound.readerIndex > 0 { stream.outbound.clear() }
            if stream.requestEnded {
                flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            } else if count == 0 {
                stream.dataDeferred = true
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            }
        }
        return count
    }

    /// Copies up to `limit` readable bytes of `source` to `target` and consumes them.
    private static func move(from source: inout ByteBuffer, to target: UnsafeMutableRawPointer, limit: Int) -> Int {
        let count = min(limit, source.readableBytes)
        guard count > 0 else { return 0 }
        source.withUnsafeReadableBytes { target.copyMemory(from: $0.baseAddress!, byteCount: count) }
        source.moveReaderIndex(forwardBy: count)
        return count
    }
}

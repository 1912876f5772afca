import GRPCCore
import NIOCore

/// `deframer`: a stream's DATA bytes, split where the input says, through the gRPC message
/// deframer. Checked: every message fits the limit, messages plus what stays buffered account
/// for every byte, and an error is one of the three the deframer documents.
enum DeframerTarget {
    static let maxMessageSize = 1024

    static func run(_ bytes: UnsafeRawBufferPointer) {
        var cursor = ByteCursor(bytes)
        // First byte: the split step (1...16 bytes per append, 0 = all at once).
        let step = Int(cursor.byte() & 0x0F)
        let payload = cursor.rest()
        var deframer = GRPCMessageDeframer(maxMessageSize: maxMessageSize)
        var delivered = 0
        var offset = 0
        while offset < payload.count {
            let end = step == 0 ? payload.count : min(payload.count, offset + step)
            deframer.append(UnsafeRawBufferPointer(rebasing: payload[offset..<end]))
            offset = end
            do throws(GRPCStatus) {
                while let message = try deframer.next() {
                    fuzzCheck(message.readableBytes <= maxMessageSize, "message of \(message.readableBytes) bytes")
                    delivered += 5 + message.readableBytes
                }
            } catch {
                let expected: [GRPCStatus.Code] = [.resourceExhausted, .unimplemented, .invalidArgument]
                fuzzCheck(expected.contains(error.code), "unexpected deframer error \(error.code)")
                return
            }
        }
        fuzzCheck(delivered <= payload.count, "delivered \(delivered) of \(payload.count) bytes")
        fuzzCheck(
            deframer.hasPartialMessage == (delivered < payload.count),
            "partial message flag wrong: delivered \(delivered) of \(payload.count)")
        if deframer.hasPartialMessage { fuzzCheck(!deframer.partialMessageDescription.isEmpty, "no description") }
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        func framed(_ messages: [[UInt8]]) -> [UInt8] {
            var buffer = ByteBuffer()
            for message in messages { GRPCMessageFramer.write(ByteBuffer(bytes: message), into: &buffer) }
            return Array(buffer: buffer)
        }
        return [
            ("one-message", [0] + framed([Array("hello".utf8)])),
            ("three-messages-split-by-3", [3] + framed([[1, 2, 3], [], Array(repeating: 7, count: 40)])),
            ("byte-at-a-time", [1] + framed([Array(repeating: 0x41, count: 20)])),
            ("compressed-flag", [0, 1, 0, 0, 0, 1, 0]),
            ("over-limit", [0, 0, 0, 0, 0x10, 0x01]),
        ]
    }
}

import CProtobufC
public import GRPCCore
public import NIOCore
import RankingProtos

/// `rankd.testing.v1` messages (the test-only Echo service) as Swift values.
public enum EchoCodec {
    /// An `EchoRequest`.
    public struct Request: Sendable, Equatable {
        public var text: String
        public var payload: [UInt8]
        public var delayMilliseconds: UInt32
        public var count: UInt32

        public init(text: String = "", payload: [UInt8] = [], delayMilliseconds: UInt32 = 0, count: UInt32 = 0) {
            self.text = text
            self.payload = payload
            self.delayMilliseconds = delayMilliseconds
            self.count = count
        }
    }

    /// An `EchoResponse`.
    public struct Response: Sendable, Equatable {
        public var text: String
        public var payload: [UInt8]
        public var messages: UInt32
        public var payloadBytes: UInt64

        public init(text: String = "", payload: [UInt8] = [], messages: UInt32 = 0, payloadBytes: UInt64 = 0) {
            self.text = text
            self.payload = payload
            self.messages = messages
            self.payloadBytes = payloadBytes
        }
    }

    public static func decodeRequest(_ buffer: ByteBuffer) throws(GRPCStatus) -> Request {
        try ProtobufCodec.decode(
            buffer, initializer: rankd__testing__v1__echo_request__init
        ) { (message) throws(GRPCStatus) -> Request in
            Request(
                text: ProtobufCodec.string(message.pointee.text), payload: ProtobufCodec.bytes(message.pointee.payload),
                delayMilliseconds: message.pointee.delay_ms, count: message.pointee.count)
        }
    }

    public static func encodeRequest(_ request: Request, allocator: ByteBufferAllocator) -> ByteBuffer {
        var message = Rankd__Testing__V1__EchoRequest()
        rankd__testing__v1__echo_request__init(&message)
        message.delay_ms = request.delayMilliseconds
        message.count = request.count
        return request.text.withCString { text in
            request.payload.withUnsafeBytes { payload in
                message.text = UnsafeMutablePointer(mutating: text)
                message.payload = binary(payload)
                return ProtobufCodec.encode(&message, allocator: allocator)
            }
        }
    }

    public static func decodeResponse(_ buffer: ByteBuffer) throws(GRPCStatus) -> Response {
        try ProtobufCodec.decode(
            buffer, initializer: rankd__testing__v1__echo_response__init
        ) { (message) throws(GRPCStatus) -> Response in
            Response(
                text: ProtobufCodec.string(message.pointee.text), payload: ProtobufCodec.bytes(message.pointee.payload),
                messages: message.pointee.messages, payloadBytes: message.pointee.payload_bytes)
        }
    }

    public static func encodeResponse(_ response: Response, allocator: ByteBufferAllocator) -> ByteBuffer {
        var message = Rankd__Testing__V1__EchoResponse()
        rankd__testing__v1__echo_response__init(&message)
        message.messages = response.messages
        message.payload_bytes = response.payloadBytes
        return response.text.withCString { text in
            response.payload.withUnsafeBytes { payload in
                message.text = UnsafeMutablePointer(mutating: text)
                message.payload = binary(payload)
                return ProtobufCodec.encode(&message, allocator: allocator)
            }
        }
    }

    private static func binary(_ bytes: UnsafeRawBufferPointer) -> ProtobufCBinaryData {
        ProtobufCBinaryData(
            len: bytes.count,
            data: UnsafeMutablePointer(mutating: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)))
    }
}

import CProtobufC
public import GRPCCore
public import NIOCore
import RankingProtos

/// `grpc.health.v1` messages as Swift values.
public enum HealthCodec {
    /// `HealthCheckResponse.ServingStatus`.
    public enum ServingStatus: Int32, Sendable {
        case unknown = 0
        case serving = 1
        case notServing = 2
        case serviceUnknown = 3
    }

    /// Decodes a `HealthCheckRequest` and returns its `service` field.
    public static func decodeRequest(_ buffer: ByteBuffer) throws(GRPCStatus) -> String {
        try ProtobufCodec.decode(
            buffer, initializer: grpc__health__v1__health_check_request__init
        ) { (request) throws(GRPCStatus) -> String in
            ProtobufCodec.string(request.pointee.service)
        }
    }

    /// Encodes a `HealthCheckResponse`.
    public static func encodeResponse(_ status: ServingStatus, allocator: ByteBufferAllocator) -> ByteBuffer {
        var response = Grpc__Health__V1__HealthCheckResponse()
        grpc__health__v1__health_check_response__init(&response)
        response.status = Grpc__Health__V1__HealthCheckResponse__ServingStatus(rawValue: UInt32(status.rawValue))
        return ProtobufCodec.encode(&response, allocator: allocator)
    }
}

import CProtobufC
public import GRPCCore
public import NIOCore
import RankingProtos

/// One `ServerReflectionRequest` as a Swift value. `grpc.reflection.v1` and `v1alpha` share the
/// wire format (same messages, same field numbers), so one codec serves both.
public struct ReflectionRequest: Sendable, Equatable {
    public enum Query: Sendable, Equatable {
        case fileByFilename(String)
        case fileContainingSymbol(String)
        case fileContainingExtension(containingType: String, number: Int32)
        case allExtensionNumbersOfType(String)
        case listServices
        /// No `message_request` field was set.
        case none
    }

    public var host: String
    public var query: Query
}

/// What the reflection service answers to one request.
public enum ReflectionAnswer: Sendable, Equatable {
    /// Serialized FileDescriptorProtos.
    case files([[UInt8]])
    case extensionNumbers(baseType: String, numbers: [Int32])
    case services([String])
    case error(GRPCStatus.Code, String)
}

/// `grpc.reflection.v1(alpha)` messages.
public enum ReflectionCodec {
    /// Decodes one request, asks `answer` for the reply and encodes the `ServerReflectionResponse`
    /// (which echoes the request as `original_request`).
    ///
    /// - Throws: `INVALID_ARGUMENT` when `buffer` is not a `ServerReflectionRequest`.
    public static func respond(
        to buffer: ByteBuffer, allocator: ByteBufferAllocator, _ answer: (ReflectionRequest) -> ReflectionAnswer
    ) throws(GRPCStatus) -> ByteBuffer {
        let arena = CArena(blockSize: 16 * 1024)
        return try ProtobufCodec.decode(
            buffer, initializer: grpc__reflection__v1__server_reflection_request__init, arena: arena
        ) { (request) throws(GRPCStatus) -> ByteBuffer in
            let decoded = ReflectionRequest(host: ProtobufCodec.string(request.pointee.host), query: query(of: request))
            var response = Grpc__Reflection__V1__ServerReflectionResponse()
            grpc__reflection__v1__server_reflection_response__init(&response)
            response.valid_host = arena.cString(decoded.host)
            response.original_request = UnsafeMutablePointer(mutating: request)
            fill(&response, with: answer(decoded), arena: arena)
            return ProtobufCodec.encode(&response, allocator: allocator)
        }
    }

    private static func query(of request: UnsafePointer<Grpc__Reflection__V1__ServerReflectionRequest>)
        -> ReflectionRequest.Query
    {
        let message = request.pointee
        switch message.message_request_case {
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
            return .fileByFilename(ProtobufCodec.string(message.file_by_filename))
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
            return .fileContainingSymbol(ProtobufCodec.string(message.file_containing_symbol))
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
            let request = message.file_containing_extension?.pointee
            return .fileContainingExtension(
                containingType: ProtobufCodec.string(request?.containing_type), number: request?.extension_number ?? 0)
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
            return .allExtensionNumbersOfType(ProtobufCodec.string(message.all_extension_numbers_of_type))
        case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
            return .listServices
        default:
            return .none
        }
    }

    private static func fill(
        _ response: inout Grpc__Reflection__V1__ServerReflectionResponse, with answer: ReflectionAnswer, arena: CArena
    ) {
        switch answer {
        case .files(let files):
            let body = arena.allocate(Grpc__Reflection__V1__FileDescriptorResponse.self)
            grpc__reflection__v1__file_descriptor_response__init(body)
            let blobs = arena.allocate(ProtobufCBinaryData.self, count: max(files.count, 1))
            for (index, file) in files.enumerated() {
                let storage = arena.allocate(byteCount: file.count)
                file.withUnsafeBytes { storage.copyMemory(from: $0.baseAddress!, byteCount: file.count) }
                blobs[index] = ProtobufCBinaryData(len: file.count, data: storage.assumingMemoryBound(to: UInt8.self))
            }
            body.pointee.n_file_descriptor_proto = files.count
            body.pointee.file_descriptor_proto = blobs
            response.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE
            response.file_descriptor_response = body
        case .extensionNumbers(let baseType, let numbers):
            let body = arena.allocate(Grpc__Reflection__V1__ExtensionNumberResponse.self)
            grpc__reflection__v1__extension_number_response__init(body)
            body.pointee.base_type_name = arena.cString(baseType)
            let values = arena.allocate(Int32.self, count: max(numbers.count, 1))
            for (index, number) in numbers.enumerated() { values[index] = number }
            body.pointee.n_extension_number = numbers.count
            body.pointee.extension_number = values
            response.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE
            response.all_extension_numbers_response = body
        case .services(let names):
            let body = arena.allocate(Grpc__Reflection__V1__ListServiceResponse.self)
            grpc__reflection__v1__list_service_response__init(body)
            let list = arena.allocate(
                UnsafeMutablePointer<Grpc__Reflection__V1__ServiceResponse>?.self, count: max(names.count, 1))
            for (index, name) in names.enumerated() {
                let service = arena.allocate(Grpc__Reflection__V1__ServiceResponse.self)
                grpc__reflection__v1__service_response__init(service)
                service.pointee.name = arena.cString(name)
                list[index] = service
            }
            body.pointee.n_service = names.count
            body.pointee.service = list
            response.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE
            response.list_services_response = body
        case .error(let code, let message):
            let body = arena.allocate(Grpc__Reflection__V1__ErrorResponse.self)
            grpc__reflection__v1__error_response__init(body)
            body.pointee.error_code = Int32(code.rawValue)
            body.pointee.error_message = arena.cString(message)
            response.message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE
            response.error_response = body
        }
    }
}

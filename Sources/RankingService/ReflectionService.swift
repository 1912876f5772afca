public import GRPCServer
import NIOCore
public import RankingAPI

/// gRPC server reflection, `grpc.reflection.v1` and `grpc.reflection.v1alpha`
/// (`ServerReflectionInfo`, one bidirectional stream, one response per request): grpcurl, evans,
/// Postman and Kreya list and call rankd's services with no proto files.
///
/// Everything it describes comes from the descriptor set generated from Protos/ (see
/// ``ProtoDescriptorSet``): a service added there and registered on the router is listed with no
/// change here.
public enum ReflectionService {
    public static let serviceNames = [
        "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
    ]

    /// Registers both versions on `router`. Register it last: it lists the services registered
    /// before it (and itself), so the list is what this server really serves.
    public static func register(in router: inout GRPCRouter, files: [ProtoFileDescriptor] = ProtoDescriptorSet.files) {
        let index = ReflectionIndex(files: files, served: router.serviceNames.union(serviceNames))
        for service in serviceNames {
            router.register(
                service: service, method: "ServerReflectionInfo",
                .bidirectionalStreaming { _, writer in ReflectionCall(index: index, writer: writer) })
        }
    }
}

/// Answers reflection queries from the parsed descriptors. Immutable, so shared by every call.
final class ReflectionIndex: Sendable {
    private let files: [String: ProtoFileDescriptor]
    private let fileBySymbol: [String: String]
    /// Sorted names of the services served that have a descriptor.
    let services: [String]

    init(files: [ProtoFileDescriptor], served: Set<String>) {
        var byName: [String: ProtoFileDescriptor] = [:]
        var bySymbol: [String: String] = [:]
        for file in files {
            byName[file.name] = file
            for symbol in file.symbols { bySymbol[symbol] = file.name }
        }
        self.files = byName
        self.fileBySymbol = bySymbol
        self.services = files.flatMap(\.services).filter(served.contains).sorted()
    }

    func answer(_ request: ReflectionRequest) -> ReflectionAnswer {
        switch request.query {
        case .listServices:
            return .services(services)
        case .fileByFilename(let name):
            guard files[name] != nil else { return .error(.notFound, "file '\(name)' is not known to this server") }
            return .files(withDependencies(name))
        case .fileContainingSymbol(let symbol):
            let symbol = symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol
            guard let name = fileBySymbol[symbol] else {
                return .error(.notFound, "symbol '\(symbol)' is not defined by any file this server knows")
            }
            return .files(withDependencies(name))
        case .fileContainingExtension(let containingType, let number):
            let type = containingType.hasPrefix(".") ? String(containingType.dropFirst()) : containingType
            guard let file = files.values.first(where: { $0.extensions.contains { $0 == (type, number) } }) else {
                return .error(.notFound, "no extension \(number) of '\(type)' is known to this server")
            }
            return .files(withDependencies(file.name))
        case .allExtensionNumbersOfType(let type):
            let type = type.hasPrefix(".") ? String(type.dropFirst()) : type
            guard files.values.contains(where: { $0.messages.contains(type) }) else {
                return .error(.notFound, "message type '\(type)' is not known to this server")
            }
            let numbers = files.values.flatMap { $0.extensions.filter { $0.extendee == type }.map(\.number) }
            return .extensionNumbers(baseType: type, numbers: numbers.sorted())
        case .none:
            return .error(.invalidArgument, "ServerReflectionRequest: message_request is not set")
        }
    }

    /// `name` first, then every file it imports, transitively (each once), so a client can build
    /// the descriptor pool from one answer.
    private func withDependencies(_ name: String) -> [[UInt8]] {
        var order: [String] = []
        var seen: Set<String> = []
        var pending = [name]
        while let next = pending.popLast() {
            guard seen.insert(next).inserted, let file = files[next] else { continue }
            order.append(next)
            pending.append(contentsOf: file.dependencies.reversed())
        }
        return order.compactMap { files[$0]?.bytes }
    }
}

/// One `ServerReflectionInfo` stream: each request is answered as it arrives, in order.
final class ReflectionCall: BidirectionalStreamingCall {
    private let index: ReflectionIndex
    private let writer: any ServerStreamWriter
    private let allocator = ByteBufferAllocator()

    init(index: ReflectionIndex, writer: any ServerStreamWriter) {
        self.index = index
        self.writer = writer
    }

    func receive(_ message: ByteBuffer) throws(GRPCStatus) {
        writer.send(try ReflectionCodec.respond(to: message, allocator: allocator, index.answer))
    }

    func requestEnded() { writer.finish(.ok) }

    func cancel() {}
}

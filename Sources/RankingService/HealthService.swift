public import GRPCServer
import NIOConcurrencyHelpers
import NIOCore
public import RankingAPI

/// Serving status per service name, shared by the health service and whoever decides it (the
/// snapshot registry: `SERVING` once a snapshot is active). `""` is the server as a whole.
/// Thread-safe.
public final class HealthStatus: Sendable {
    private struct State {
        var statuses: [String: HealthCodec.ServingStatus] = [:]
        var observers: [Int: @Sendable (String, HealthCodec.ServingStatus) -> Void] = [:]
        var nextObserver = 0
    }
    private let state = NIOLockedValueBox(State())

    /// Creates a registry with the given initial statuses.
    public init(_ initial: [String: HealthCodec.ServingStatus] = ["": .notServing]) {
        state.withLockedValue { $0.statuses = initial }
    }

    /// Sets the status of `service` and notifies watchers if it changed.
    public func set(_ status: HealthCodec.ServingStatus, for service: String = "") {
        let observers: [@Sendable (String, HealthCodec.ServingStatus) -> Void] = state.withLockedValue { state in
            guard state.statuses[service] != status else { return [] }
            state.statuses[service] = status
            return Array(state.observers.values)
        }
        for observer in observers { observer(service, status) }
    }

    /// The status of `service`, or `nil` if it is not known.
    public func status(of service: String) -> HealthCodec.ServingStatus? {
        state.withLockedValue { $0.statuses[service] }
    }

    func observe(_ observer: @escaping @Sendable (String, HealthCodec.ServingStatus) -> Void) -> Int {
        state.withLockedValue { state in
            state.nextObserver += 1
            state.observers[state.nextObserver] = observer
            return state.nextObserver
        }
    }

    func removeObserver(_ id: Int) {
        _ = state.withLockedValue { $0.observers.removeValue(forKey: id) }
    }
}

/// `grpc.health.v1.Health`: `Check` and `Watch` per the health-checking protocol.
public enum HealthService {
    public static let serviceName = "grpc.health.v1.Health"

    /// Registers `Check` and `Watch` on `router`.
    public static func register(in router: inout GRPCRouter, status: HealthStatus) {
        router.register(
            service: serviceName, method: "Check",
            .unary { context, request in
                do throws(GRPCStatus) {
                    let service = try HealthCodec.decodeRequest(request)
                    guard let current = status.status(of: service) else {
                        return .failure(GRPCStatus(.notFound, "unknown service '\(service)'"))
                    }
                    return .response(HealthCodec.encodeResponse(current, allocator: ByteBufferAllocator()))
                } catch {
                    return .failure(error)
                }
            })
        router.register(
            service: serviceName, method: "Watch",
            .serverStreaming { context, request, writer in
                let service: String
                do throws(GRPCStatus) {
                    service = try HealthCodec.decodeRequest(request)
                } catch {
                    return writer.finish(error)
                }
                let allocator = ByteBufferAllocator()
                writer.send(
                    HealthCodec.encodeResponse(status.status(of: service) ?? .serviceUnknown, allocator: allocator))
                let box = NIOLockedValueBox<Int?>(nil)
                let id = status.observe { changed, newStatus in
                    guard changed == service else { return }
                    guard writer.isActive else {
                        if let id = box.withLockedValue({ $0 }) { status.removeObserver(id) }
                        return
                    }
                    writer.send(HealthCodec.encodeResponse(newStatus, allocator: allocator))
                }
                box.withLockedValue { $0 = id }
            })
    }
}

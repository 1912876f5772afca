import NIOConcurrencyHelpers

/// Sent down every connection's pipeline to start a graceful shutdown.
struct GracefulShutdownEvent: Sendable {}

/// Counts admitted connections against `maxConnections`.
final class ConnectionGate: Sendable {
    private let limit: Int
    private let count = NIOLockedValueBox(0)

    init(limit: Int) { self.limit = limit }

    func admit() -> Bool {
        count.withLockedValue { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func release() { count.withLockedValue { $0 -= 1 } }

    var current: Int { count.withLockedValue { $0 } }
}

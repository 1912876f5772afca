import CoreMetrics
import GRPCCore
import NIOCore

/// What the server records through swift-metrics (whichever backend the process bootstrapped).
///
/// Every handle is created here, once, when the server starts: recording on the call path is then
/// an atomic add on a handle found by index (route × status code), with no lock, no dictionary
/// and no allocation. Metric names are listed in docs/OPERATIONS.md ("Metrics").
final class GRPCServerMetrics: Sendable {
    /// `[route][code]`; the last route is every path the router does not know (`unknown`).
    private let handled: [[Counter]]
    /// Per route, from the request headers to the final status.
    private let handling: [CoreMetrics.Timer]
    private let connectionsOpen: Recorder
    private let connectionsAccepted: Counter
    private let connectionsRefused: [RefusalReason: Counter]
    private let streams: Counter
    private let rapidResetGoAways: Counter
    /// Connections cut off by the other abuse limits, by reason (docs/SECURITY.md).
    private let abuseGoAways: [AbuseReason: Counter]
    private let tooLarge: Counter

    /// The route index of calls to paths the router does not know.
    let unknownRoute: Int

    init(router: GRPCRouter) {
        var routes = router.paths.map { path -> (service: String, method: String) in
            let parts = path.split(separator: "/", omittingEmptySubsequences: true)
            return (String(parts.first ?? ""), String(parts.dropFirst().first ?? ""))
        }
        routes.append(("unknown", "unknown"))
        unknownRoute = routes.count - 1
        handled = routes.map { route in
            GRPCStatus.Code.allCases.sorted { $0.rawValue < $1.rawValue }.map { code in
                Counter(
                    label: "rankd_grpc_server_handled_total",
                    dimensions: [
                        ("grpc_service", route.service), ("grpc_method", route.method), ("grpc_code", "\(code)"),
                    ])
            }
        }
        handling = routes.map { route in
            CoreMetrics.Timer(
                label: "rankd_grpc_server_handling_seconds",
                dimensions: [("grpc_service", route.service), ("grpc_method", route.method)])
        }
        connectionsOpen = Recorder(label: "rankd_grpc_connections_open", aggregate: false)
        connectionsAccepted = Counter(label: "rankd_grpc_connections_accepted_total")
        connectionsRefused = Dictionary(
            uniqueKeysWithValues: RefusalReason.allCases.map {
                ($0, Counter(label: "rankd_grpc_connections_refused_total", dimensions: [("reason", $0.rawValue)]))
            })
        streams = Counter(label: "rankd_grpc_streams_total")
        rapidResetGoAways = Counter(label: "rankd_grpc_rapid_reset_goaways_total")
        abuseGoAways = Dictionary(
            uniqueKeysWithValues: AbuseReason.allCases.map {
                ($0, Counter(label: "rankd_grpc_abuse_goaways_total", dimensions: [("reason", $0.rawValue)]))
            })
        tooLarge = Counter(label: "rankd_grpc_rejected_too_large_total")
    }

    /// A call on `route` ended with `code` after starting at `started`.
    func handled(route: Int, code: GRPCStatus.Code, started: NIODeadline) {
        handled[route][code.rawValue].increment()
        handling[route].recordNanoseconds((NIODeadline.now() - started).nanoseconds)
    }

    func connectionAccepted(open: Int) {
        connectionsAccepted.increment()
        connectionsOpen.record(open)
    }

    func connectionClosed(open: Int) { connectionsOpen.record(open) }
    func connectionRefused(_ reason: RefusalReason) { connectionsRefused[reason]?.increment() }
    func streamOpened() { streams.increment() }
    func rapidResetGoAway() { rapidResetGoAways.increment() }
    func abuseGoAway(_ reason: AbuseReason) { abuseGoAways[reason]?.increment() }
    /// A request message or header list over its limit (`RESOURCE_EXHAUSTED`).
    func rejectedTooLarge() { tooLarge.increment() }
}

/// Why a connection was refused at accept (the `reason` of `rankd_grpc_connections_refused_total`).
enum RefusalReason: String, CaseIterable, Sendable {
    /// Over `maxConnections`.
    case maxConnections = "max_connections"
    /// Its address already held `maxConnectionsPerAddress`.
    case perAddressOpen = "per_address_open"
    /// Its address's connection-rate bucket was empty.
    case perAddressRate = "per_address_rate"
}

/// Why a connection was cut off (the `reason` of `rankd_grpc_abuse_goaways_total`).
enum AbuseReason: String, CaseIterable, Sendable {
    /// Over the PING/SETTINGS budget.
    case controlFrames = "control_frames"
    /// No preface and SETTINGS, or a request header block, within the handshake timeout.
    case handshake
    /// Open calls made no progress for the stall timeout.
    case stall
}

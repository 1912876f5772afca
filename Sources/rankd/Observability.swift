import ArgumentParser
import CommandSupport
import CoreMetrics
import Foundation
import LiveState
import Logging
import MetricsExporter
import RankingEngine
import RankingService
import SnapshotLifecycle
import Synchronization
import TraceExporter

/// The operations flags: metrics listener, access log, tracing (docs/OPERATIONS.md, "Metrics",
/// "Tracing").
struct ObservabilityOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Serve Prometheus metrics at http://ADDRESS/metrics, host:port (default: off).", valueName: "address"))
    var metricsListen: String?

    @Option(
        help: ArgumentHelp(
            "Log one logfmt access line every N Rank calls (1: each call; default: off).", valueName: "n"))
    var accessLogEvery: Int?

    @Option(
        help: ArgumentHelp(
            "Export Rank trace spans over OTLP/HTTP (JSON) to this collector, e.g. http://127.0.0.1:4318/v1/traces (default: off).",
            valueName: "url"))
    var otlpEndpoint: String?

    @Option(
        help: ArgumentHelp(
            "Share of Rank calls without a sampled traceparent to trace, 0 to 1 (default 0.01).", valueName: "ratio"))
    var traceSampleRatio: Double?
}

/// What rankd wires for operations: the swift-metrics backend and its HTTP listener, the gauges
/// read at scrape time, the access logger and the tracer. Libraries only record through the
/// swift-metrics and swift-distributed-tracing facades.
final class Observability {
    private(set) var metricsServer: MetricsHTTPServer?
    let recordsMetrics: Bool
    let rank: RankObservability

    /// Bootstraps swift-metrics when metrics are on: call before any library creates its handles
    /// (registering services, starting the server).
    init(options: ObservabilityOptions, file: ConfigFile, registry: SnapshotRegistry<ServingSnapshot>, logger: Logger)
        throws
    {
        let listen = options.metricsListen ?? file.metricsListen
        let every = options.accessLogEvery ?? file.accessLogEvery
        if let every, every < 1 { throw ValidationError("--access-log-every must be at least 1, got \(every)") }
        recordsMetrics = listen != nil
        let ratio = options.traceSampleRatio ?? file.traceSampleRatio ?? 0.01
        guard (0...1).contains(ratio) else {
            throw ValidationError("--trace-sample-ratio must be from 0 to 1, got \(ratio)")
        }
        if let url = options.otlpEndpoint ?? file.otlpEndpoint {
            guard let endpoint = OTLPEndpoint(url: url) else {
                throw ValidationError("--otlp-endpoint '\(url)': expected http://host[:port][/path]")
            }
            tracer = OTLPTracer(
                endpoint: endpoint, serviceName: "rankd", sampleRatio: ratio,
                onError: { [logger] in logger.warning("\($0)") })
            logger.info("tracing", metadata: ["otlp_endpoint": "\(endpoint)", "sample_ratio": "\(ratio)"])
        }
        rank = RankObservability(
            recordsMetrics: recordsMetrics, accessLogEvery: every,
            accessLogger: every == nil ? nil : Logger(label: "access"), tracer: tracer)
        guard let listen else { return }
        address = try parseListenAddress(listen, flag: "--metrics-listen")
        let backend = PrometheusBackend()
        MetricsSystem.bootstrap(backend)
        self.backend = backend
        backend.addCollector(SnapshotGauges(registry: registry).collect)
    }

    /// Exports the live overlay's size (items changed, removed, users deleted, log bytes) as gauges read when
    /// Prometheus scrapes.
    func watch(_ live: LiveOverlay) {
        guard let backend else { return }
        let gauges = (
            items: Gauge(label: "rankd_live_overlay_items"), removed: Gauge(label: "rankd_live_overlay_removed_items"),
            users: Gauge(label: "rankd_live_overlay_deleted_users"), bytes: Gauge(label: "rankd_live_log_bytes")
        )
        backend.addCollector {
            let status = live.status()
            gauges.items.record(status.items)
            gauges.removed.record(status.removedItems)
            gauges.users.record(status.deletedUsers)
            gauges.bytes.record(status.logBytes)
        }
    }

    private var address: HostPort?
    private var backend: PrometheusBackend?
    private var tracer: OTLPTracer?

    /// Starts the metrics listener (if on) and returns the address it bound.
    func start() async throws -> String? {
        guard let address, let backend else { return nil }
        do {
            let server = try await MetricsHTTPServer.start(host: address.host, port: address.port) { backend.render() }
            metricsServer = server
            return server.localAddress?.port.map { "\(address.host):\($0)" } ?? address.description
        } catch {
            throw StartupError("cannot listen for metrics on \(address): \(error)")
        }
    }

    /// Closes the metrics listener and sends the spans still queued.
    func stop() async {
        await metricsServer?.close()
        tracer?.shutdown()
    }
}

/// Snapshot gauges computed when Prometheus scrapes: the active version (an info gauge, one
/// series, replaced when the version changes), when it was built, and what is still mapped.
private final class SnapshotGauges: Sendable {
    private let registry: SnapshotRegistry<ServingSnapshot>
    private let info = Mutex<(version: String, gauge: Gauge)?>(nil)
    private let created = Gauge(label: "rankd_snapshot_created_timestamp_seconds")
    private let mapped = Gauge(label: "rankd_snapshots_mapped")
    private let mappedBytes = Gauge(label: "rankd_snapshots_mapped_bytes")

    init(registry: SnapshotRegistry<ServingSnapshot>) { self.registry = registry }

    func collect() {
        let live = ServingSnapshot.mappedSnapshots
        mapped.record(live.count)
        mappedBytes.record(live.bytes)
        guard let serving = registry.current() else { return }
        let version = serving.version
        info.withLock { info in
            guard info?.version != version else { return }
            info?.gauge.destroy()
            let gauge = Gauge(label: "rankd_snapshot_info", dimensions: [("version", version)])
            gauge.record(1)
            info = (version, gauge)
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let createdAt = serving.snapshot.manifest.createdAt
        if let date = formatter.date(from: createdAt) ?? ISO8601DateFormatter().date(from: createdAt) {
            created.record(date.timeIntervalSince1970)
        }
    }
}

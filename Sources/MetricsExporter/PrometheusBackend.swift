public import CoreMetrics
import NIOConcurrencyHelpers
public import Prometheus

/// The swift-metrics backend rankd bootstraps when `--metrics-listen` is set.
///
/// Counters, gauges and meters are swift-prometheus's (atomics, no lock when recorded); timers are
/// ``LockFreeHistogram``s with ``LockFreeHistogram/defaultUpperBoundsNanoseconds``, because
/// swift-prometheus's histograms lock per sample. Value recorders (`aggregate: true`) stay
/// swift-prometheus histograms: nothing on a hot path records one.
///
/// Creating a metric takes a lock (and may allocate): libraries create their handles once, up
/// front, and only record afterwards. Creating the same label and dimensions twice returns the
/// same series.
public final class PrometheusBackend: MetricsFactory, Sendable {
    /// swift-prometheus's registry: counters, gauges and value histograms.
    public let registry: PrometheusCollectorRegistry
    private let prometheus: PrometheusMetricsFactory
    private let timers = NIOLockedValueBox<[String: [(labels: String, histogram: LockFreeHistogram)]]>([:])
    private let collectors = NIOLockedValueBox<[@Sendable () -> Void]>([])

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        self.prometheus = PrometheusMetricsFactory(registry: registry)
    }

    /// Runs `collect` before every render: for gauges whose value is read at scrape time
    /// (mapped snapshots, snapshot age) rather than pushed when it changes.
    public func addCollector(_ collect: @escaping @Sendable () -> Void) {
        collectors.withLockedValue { $0.append(collect) }
    }

    /// The whole exposition in the Prometheus text format (version 0.0.4).
    public func render() -> [UInt8] {
        for collect in collectors.withLockedValue({ $0 }) { collect() }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(64 * 1024)
        registry.emit(into: &buffer)
        let families = timers.withLockedValue { $0 }
        for name in families.keys.sorted() {
            buffer.append(contentsOf: "# TYPE \(name) histogram\n".utf8)
            for series in families[name]! {
                series.histogram.render(name: name, labels: series.labels, into: &buffer)
            }
        }
        return buffer
    }

    // MARK: MetricsFactory

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        prometheus.makeCounter(label: label, dimensions: dimensions)
    }

    public func makeFloatingPointCounter(
        label: String, dimensions: [(String, String)]
    ) -> any FloatingPointCounterHandler {
        prometheus.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        prometheus.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        prometheus.makeMeter(label: label, dimensions: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let labels = PrometheusText.labels(dimensions)
        return timers.withLockedValue { families in
            if let existing = families[label]?.first(where: { $0.labels == labels }) { return existing.histogram }
            let histogram = LockFreeHistogram(upperBoundsNanoseconds: LockFreeHistogram.defaultUpperBoundsNanoseconds)
            families[label, default: []].append((labels, histogram))
            return histogram
        }
    }

    public func destroyCounter(_ handler: any CounterHandler) { prometheus.destroyCounter(handler) }
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        prometheus.destroyFloatingPointCounter(handler)
    }
    public func destroyRecorder(_ handler: any RecorderHandler) { prometheus.destroyRecorder(handler) }
    public func destroyMeter(_ handler: any MeterHandler) { prometheus.destroyMeter(handler) }

    public func destroyTimer(_ handler: any TimerHandler) {
        guard let histogram = handler as? LockFreeHistogram else { return }
        timers.withLockedValue { families in
            for name in families.keys {
                families[name]!.removeAll { $0.histogram === histogram }
                if families[name]!.isEmpty { families[name] = nil }
            }
        }
    }
}

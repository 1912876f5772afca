public import Foundation
import Histogram

/// Latency percentiles of a set of calls, in microseconds.
public struct LatencySummary: Sendable, Codable, Equatable {
    public var count: Int
    public var p50: UInt64
    public var p90: UInt64
    public var p99: UInt64
    public var p999: UInt64
    public var max: UInt64
    public var mean: Double
    /// Calls that did not end `OK`, by status name (plus `CLIENT_DROPPED`).
    public var errors: [String: Int]

    public init(_ window: LatencyWindow) {
        let histogram = window.histogram
        count = window.count
        let empty = histogram.totalCount == 0
        p50 = empty ? 0 : histogram.valueAtPercentile(50)
        p90 = empty ? 0 : histogram.valueAtPercentile(90)
        p99 = empty ? 0 : histogram.valueAtPercentile(99)
        p999 = empty ? 0 : histogram.valueAtPercentile(99.9)
        max = empty ? 0 : histogram.max
        mean = empty ? 0 : histogram.mean
        errors = window.errors
    }

    public var errorCount: Int { errors.values.reduce(0, +) }
}

/// One per-second window in the report.
public struct WindowReport: Sendable, Codable, Equatable {
    /// Seconds since the end of the warm-up (by intended send time).
    public var second: Int
    public var latency: LatencySummary
}

/// A reload performed during the run and what the tail did around it.
public struct ReloadReport: Sendable, Codable, Equatable {
    /// Seconds since the end of the warm-up when the activation was sent.
    public var atSeconds: Double
    public var version: String
    /// `OK`, or the status the admin RPC failed with.
    public var status: String
    public var message: String
    public var durationMillis: Double
    /// Latency of the calls intended in the window before the activation's, its own and the
    /// two after (``RunReport/reloadSpan``).
    public var around: LatencySummary?
}

/// One step of `--find-capacity`.
public struct CapacityStep: Sendable, Codable, Equatable {
    public var targetRate: Double
    public var achievedRate: Double
    public var p99Micros: UInt64
    public var errors: Int
    public var passed: Bool

    public init(targetRate: Double, achievedRate: Double, p99Micros: UInt64, errors: Int, passed: Bool) {
        self.targetRate = targetRate
        self.achievedRate = achievedRate
        self.p99Micros = p99Micros
        self.errors = errors
        self.passed = passed
    }
}

/// The whole result of a run, as written by `--json` (schema `rankd.loadtest.v1`).
public struct RunReport: Sendable, Codable, Equatable {
    public var schema = "rankd.loadtest.v1"
    public var startedAt: String
    public var target: String
    /// `open` or `closed`.
    public var mode: String
    public var arrivals: String?
    public var targetRate: Double?
    public var concurrency: Int?
    public var connections: Int
    public var scenario: String
    public var durationSeconds: Double
    public var warmupSeconds: Double
    /// Calls recorded after the warm-up ÷ seconds from the end of the warm-up to the last
    /// completion (so an open-loop run the server could not keep up with shows less than
    /// `targetRate`).
    public var achievedRate: Double
    public var generator: GeneratorStats
    public var latency: LatencySummary
    public var windows: [WindowReport]
    public var reloads: [ReloadReport]
    /// Windows not within the span around any reload (only when there were reloads).
    public var steadyState: LatencySummary?
    public var capacitySteps: [CapacityStep]?

    /// The JSON text (sorted keys, pretty-printed).
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

/// A reload event as seen by the recorder timeline.
public struct ReloadEvent: Sendable, Equatable {
    /// Nanoseconds since the schedule start when the activation was sent.
    public var atNanos: UInt64
    public var version: String
    public var status: String
    public var message: String
    public var durationNanos: UInt64

    public init(atNanos: UInt64, version: String, status: String, message: String, durationNanos: UInt64) {
        self.atNanos = atNanos
        self.version = version
        self.status = status
        self.message = message
        self.durationNanos = durationNanos
    }
}

extension RunReport {
    /// Windows counted as "around" a reload, relative to the window it happened in: the one
    /// before, its own and the two after (an activation's effects — page faults, a cold
    /// cache — show up just after it).
    public static let reloadSpan = -1..<3

    /// Builds the report from a finished run.
    public init(
        startedAt: Date, target: String, configuration: LoadConfiguration, connections: Int, scenario: String,
        recorder: LatencyRecorder, generator: GeneratorStats, reloads events: [ReloadEvent] = []
    ) {
        let (total, windows) = recorder.snapshot()
        self.startedAt = ISO8601DateFormatter().string(from: startedAt)
        self.target = target
        switch configuration.mode {
        case .open(let rate, let arrivals):
            mode = "open"
            self.arrivals = arrivals.rawValue
            targetRate = rate
        case .closed(let concurrency):
            mode = "closed"
            self.concurrency = concurrency
        }
        self.connections = connections
        self.scenario = scenario
        durationSeconds = Double(configuration.durationNanos) / 1e9
        warmupSeconds = Double(configuration.warmupNanos) / 1e9
        // Completed calls over the time from the end of the warm-up to the last completion: an
        // overloaded server that needs 22 s to answer a 15 s schedule achieved 15/22 of the
        // target, however patiently the harness waited. (A run ended by --max-requests is
        // shorter than --duration; this covers that too.)
        let measured = Swift.max(generator.elapsedSeconds - warmupSeconds, 1e-9)
        achievedRate = Double(Int(total.histogram.totalCount)) / measured
        self.generator = generator
        latency = LatencySummary(total)
        self.windows = windows.map { WindowReport(second: $0.index, latency: LatencySummary($0)) }
        let warmup = recorder.warmupNanos
        var affected = Set<Int>()
        reloads = events.map { event in
            let at =
                event.atNanos >= warmup ? Double(event.atNanos - warmup) / 1e9 : -Double(warmup - event.atNanos) / 1e9
            let window = Int(at.rounded(.down))
            let span = (window + Self.reloadSpan.lowerBound)..<(window + Self.reloadSpan.upperBound)
            affected.formUnion(span)
            return ReloadReport(
                atSeconds: at, version: event.version, status: event.status, message: event.message,
                durationMillis: Double(event.durationNanos) / 1e6,
                around: LatencySummary(LatencyRecorder.merge(windows, indices: span)))
        }
        if !events.isEmpty {
            var steady = LatencyWindow(index: 0)
            for window in windows where !affected.contains(window.index) { steady.add(window) }
            steadyState = LatencySummary(steady)
        }
    }
}

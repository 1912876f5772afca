public import GRPCCore
public import Histogram
import NIOConcurrencyHelpers

/// Latency histogram settings shared by every recorder: 1 µs to 1 h, 3 significant digits.
public enum LatencyHistogram {
    public static let highestMicros: UInt64 = 3_600_000_000

    public static func make() -> Histogram<UInt64> {
        Histogram<UInt64>(
            lowestDiscernibleValue: 1, highestTrackableValue: highestMicros, numberOfSignificantValueDigits: .three)
    }
}

/// How a call ended, as counted in reports: a gRPC status, or a request the generator did not
/// send because the in-flight cap was reached (never silently: it is an error of the run).
public enum CallOutcome: Hashable, Sendable, CustomStringConvertible {
    case status(GRPCStatus.Code)
    case droppedByClient

    public var isSuccess: Bool { self == .status(.ok) }

    public var description: String {
        switch self {
        case .status(let code): code.description
        case .droppedByClient: "CLIENT_DROPPED"
        }
    }
}

/// One window of the run (one second by default), keyed by *intended* send time: a request
/// that should have gone out at second 12 counts in window 12 however late it completed, so a
/// stall shows where it began and the windows around a reload hold the requests it affected.
public struct LatencyWindow: Sendable {
    /// Window index: seconds since the end of the warm-up.
    public var index: Int
    /// Latencies (µs) of completed calls, successful or not.
    public var histogram: Histogram<UInt64>
    /// Calls that did not end `OK`, by outcome name.
    public var errors: [String: Int]

    public init(index: Int) {
        self.index = index
        histogram = LatencyHistogram.make()
        errors = [:]
    }

    /// Completed calls plus dropped ones.
    public var count: Int { Int(histogram.totalCount) + (errors[CallOutcome.droppedByClient.description] ?? 0) }
    public var errorCount: Int { errors.values.reduce(0, +) }

    mutating func add(_ other: LatencyWindow) {
        histogram.add(other.histogram)
        errors.merge(other.errors, uniquingKeysWith: +)
    }
}

/// Records call outcomes of one run: an overall histogram, per-window histograms and errors
/// by status. Calls whose intended time falls in the warm-up are counted but not recorded.
///
/// Thread-safe (one lock; completions arrive on the client event loops). Times are nanoseconds
/// on one monotonic clock, relative to the schedule start.
public final class LatencyRecorder: Sendable {
    private struct State {
        var total: LatencyWindow = LatencyWindow(index: -1)
        var windows: [LatencyWindow] = []
        var warmupCompleted = 0
        var completed = 0
    }

    /// Calls with intended time below this are warm-up.
    public let warmupNanos: UInt64
    public let windowNanos: UInt64
    private let state = NIOLockedValueBox(State())

    public init(warmupNanos: UInt64, windowNanos: UInt64 = 1_000_000_000) {
        precondition(windowNanos > 0)
        self.warmupNanos = warmupNanos
        self.windowNanos = windowNanos
    }

    /// Records one call. The latency is `completedNanos - intendedNanos`: for an open-loop run
    /// the intended time comes from the schedule, not from when the request actually left, so
    /// time spent waiting behind a slow server is charged to the request (wrk2's correction of
    /// coordinated omission). Dropped calls pass `completedNanos == nil`.
    public func record(intendedNanos: UInt64, completedNanos: UInt64?, outcome: CallOutcome) {
        let latencyMicros = completedNanos.map {
            min(($0 &- min($0, intendedNanos)) / 1000, LatencyHistogram.highestMicros)
        }
        state.withLockedValue { state in
            guard intendedNanos >= warmupNanos else {
                state.warmupCompleted += 1
                return
            }
            state.completed += 1
            let index = Int((intendedNanos - warmupNanos) / windowNanos)
            while state.windows.count <= index { state.windows.append(LatencyWindow(index: state.windows.count)) }
            if let latencyMicros {
                _ = state.windows[index].histogram.record(latencyMicros)
                _ = state.total.histogram.record(latencyMicros)
            }
            if !outcome.isSuccess {
                state.windows[index].errors[outcome.description, default: 0] += 1
                state.total.errors[outcome.description, default: 0] += 1
            }
        }
    }

    /// Calls recorded after the warm-up.
    public var recordedCount: Int { state.withLockedValue { $0.completed } }
    /// Calls that fell in the warm-up.
    public var warmupCount: Int { state.withLockedValue { $0.warmupCompleted } }

    /// Summary of window `index` (for the progress line), nil if nothing was recorded there.
    public func windowSummary(_ index: Int) -> LatencySummary? {
        state.withLockedValue { state in
            state.windows.indices.contains(index) ? LatencySummary(state.windows[index]) : nil
        }
    }

    /// A copy of the totals and the windows so far.
    public func snapshot() -> (total: LatencyWindow, windows: [LatencyWindow]) {
        state.withLockedValue { ($0.total, $0.windows) }
    }

    /// The windows `range` merged into one (missing windows count as empty).
    public static func merge(_ windows: [LatencyWindow], indices: Range<Int>) -> LatencyWindow {
        var merged = LatencyWindow(index: indices.lowerBound)
        for window in windows where indices.contains(window.index) { merged.add(window) }
        return merged
    }
}

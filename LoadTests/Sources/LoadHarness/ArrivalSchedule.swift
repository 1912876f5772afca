import SeededRandom

/// How request arrivals are spaced in an open-loop run.
public enum ArrivalProcess: String, Sendable, Codable, CaseIterable {
    /// Evenly spaced: request `i` is due at `i / rate`.
    case constant
    /// A Poisson process: exponential gaps with mean `1 / rate` (what independent users produce).
    case poisson
}

/// The intended send times of an open-loop run, in nanoseconds from the start of the schedule.
///
/// The schedule is fixed before the run and never consults the server: latency is measured from
/// these times (as wrk2 does), so a request that could not even be sent on time because the
/// server stalled is charged for the wait. Iterate it in order; it is a value type owned by the
/// sender thread.
public struct ArrivalSchedule: Sendable, IteratorProtocol, Sequence {
    /// Requests per second.
    public let rate: Double
    public let process: ArrivalProcess
    private var random: SplitMix64
    private var index: UInt64 = 0
    private var poissonTime: Double = 0

    /// - Parameters:
    ///   - rate: requests per second, > 0.
    ///   - process: constant or Poisson spacing.
    ///   - seed: seed of the Poisson gaps (ignored for constant spacing).
    public init(rate: Double, process: ArrivalProcess, seed: UInt64 = 1) {
        precondition(rate > 0 && rate.isFinite, "arrival rate must be positive")
        self.rate = rate
        self.process = process
        self.random = SplitMix64(seed: seed)
    }

    /// The next intended send time (ns since the schedule started); never decreasing.
    public mutating func next() -> UInt64? {
        defer { index += 1 }
        switch process {
        case .constant:
            // Computed from the index, not accumulated, so rounding never drifts over a long run.
            return UInt64((Double(index) * 1e9 / rate).rounded())
        case .poisson:
            let time = poissonTime
            poissonTime += -log(random.nextUnitInterval()) * 1e9 / rate
            return UInt64(time.rounded())
        }
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

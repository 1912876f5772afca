/// Finds the highest open-loop rate whose p99 stays under a target: doubles the rate in short
/// steps until a step fails, then bisects between the last passing and the first failing rate.
///
/// A step passes when p99 ≤ target, no call failed or was dropped, and the achieved rate is at
/// least 95% of the target rate (a generator that cannot keep up must not pass a step).
public struct CapacitySearch: Sendable {
    public var p99TargetMicros: UInt64
    public var startRate: Double
    public var maxRate: Double
    /// Bisection stops after this many steps or when the bracket is within 5%.
    public var bisectionSteps: Int

    public init(p99TargetMicros: UInt64, startRate: Double, maxRate: Double, bisectionSteps: Int = 5) {
        precondition(startRate > 0 && maxRate >= startRate && bisectionSteps >= 0)
        self.p99TargetMicros = p99TargetMicros
        self.startRate = startRate
        self.maxRate = maxRate
        self.bisectionSteps = bisectionSteps
    }

    /// Whether one step's report meets the target.
    public func passes(_ report: RunReport, rate: Double) -> CapacityStep {
        let errors = report.latency.errorCount
        let passed = report.latency.p99 <= p99TargetMicros && errors == 0 && report.achievedRate >= 0.95 * rate
        return CapacityStep(
            targetRate: rate, achievedRate: report.achievedRate, p99Micros: report.latency.p99, errors: errors,
            passed: passed)
    }

    /// Runs the search; `step` performs one bounded open-loop run at the given rate.
    ///
    /// - Returns: the highest passing rate (0 if even `startRate` failed) and every step.
    public func run(
        step: (Double) async -> RunReport, onStep: (CapacityStep) -> Void = { _ in }
    ) async -> (capacity: Double, steps: [CapacityStep]) {
        var steps: [CapacityStep] = []
        func measure(_ rate: Double) async -> Bool {
            let result = passes(await step(rate), rate: rate)
            steps.append(result)
            onStep(result)
            return result.passed
        }
        var good = 0.0
        var bad: Double?
        var rate = startRate
        while true {
            if await measure(rate) {
                good = rate
                if rate >= maxRate { return (good, steps) }
                rate = min(rate * 2, maxRate)
            } else {
                bad = rate
                break
            }
        }
        guard var high = bad else { return (good, steps) }
        for _ in 0..<bisectionSteps where (high - good) / high > 0.05 {
            let middle = ((good + high) / 2).rounded()
            if await measure(middle) { good = middle } else { high = middle }
        }
        return (good, steps)
    }
}

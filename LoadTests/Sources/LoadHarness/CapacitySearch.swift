/// Finds the highest open-loop rate whose p99 stays under a target: doubles the rate in short
/// steps until a step fails, then bisects between the last passing and the first failing rate.
///
/// A step passes when p99 ≤ target, no call failed or was dropped, and the achieved rate is at
/// least 95% of the target rate (a generator that cannot keep up must not pass a step).
///
/// p99 is not always lowest at the lowest rate: a server that idles between calls pays for waking
/// its threads and for cold caches on every call, and a short step at a few calls per second has
/// only a handful of samples, so its p99 is its maximum (rankd on the 1M snapshot, MMR k 20: p99
/// 1.3–1.4 ms at 100–400 req/s, 0.95 ms at 1,600). So until some step has passed, a failing step
/// does not end the ramp while the server keeps up with it — every call answered, the rate
/// achieved, and p99 at most twice the lowest p99 seen so far; a step whose p99 jumps beyond that
/// is queueing, and ends it. When no step passes, the search bisects below the start rate.
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

    /// Whether a step that missed the target still shows a server that keeps up: no errors, the
    /// rate achieved, and no jump in p99 over the lowest seen (which would mean calls queue).
    func keepsUp(_ step: CapacityStep, lowestP99: UInt64) -> Bool {
        step.errors == 0 && step.achievedRate >= 0.95 * step.targetRate
            && (lowestP99 == .max || step.p99Micros <= 2 * lowestP99)
    }

    /// Runs the search; `step` performs one bounded open-loop run at the given rate.
    ///
    /// - Returns: the highest passing rate (0 if no step passed) and every step.
    public func run(
        step: (Double) async -> RunReport, onStep: (CapacityStep) -> Void = { _ in }
    ) async -> (capacity: Double, steps: [CapacityStep]) {
        var steps: [CapacityStep] = []
        func measure(_ rate: Double) async -> CapacityStep {
            let result = passes(await step(rate), rate: rate)
            steps.append(result)
            onStep(result)
            return result
        }
        var good = 0.0
        // The lowest failing rate above `good`: where the bisection starts.
        var high: Double
        // Lowest p99 among the failing steps before the first pass (see the type's comment).
        var lowFloor = UInt64.max
        var rate = startRate
        while true {
            let step = await measure(rate)
            if step.passed {
                good = rate
                if rate >= maxRate { return (good, steps) }
            } else if good == 0, keepsUp(step, lowestP99: lowFloor), rate < maxRate {
                lowFloor = min(lowFloor, step.p99Micros)
            } else {
                // The ramp ends; if nothing passed, the bisection looks below the start rate.
                high = good == 0 ? startRate : rate
                break
            }
            rate = min(rate * 2, maxRate)
        }
        for _ in 0..<bisectionSteps where (high - good) / high > 0.05 {
            let middle = ((good + high) / 2).rounded()
            if await measure(middle).passed { good = middle } else { high = middle }
        }
        return (good, steps)
    }
}

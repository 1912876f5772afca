import Foundation
import LoadHarness
import Testing

@Suite struct CapacitySearchTests {
    /// A fake server: p99 is 1 ms up to `knee` req/s, then 50 ms.
    private func report(rate: Double, knee: Double, achieved: Double? = nil) -> RunReport {
        report(rate: rate, latency: rate <= knee ? 1_000_000 : 50_000_000, achieved: achieved)
    }

    /// One second of `achieved` (default: `rate`) calls, each taking `latency` nanoseconds.
    private func report(rate: Double, latency: UInt64, achieved: Double? = nil) -> RunReport {
        let recorder = LatencyRecorder(warmupNanos: 0)
        let count = Int(achieved ?? rate)
        for index in 0..<count {
            let intended = UInt64(index) * 1_000_000_000 / UInt64(count)
            recorder.record(intendedNanos: intended, completedNanos: intended + latency, outcome: .status(.ok))
        }
        return RunReport(
            startedAt: Date(), target: "t",
            configuration: LoadConfiguration(
                mode: .open(rate: rate, arrivals: .constant), durationNanos: 1_000_000_000),
            connections: 1, scenario: "s", recorder: recorder, generator: GeneratorStats(elapsedSeconds: 1))
    }

    @Test func rampsThenBisectsToTheKnee() async {
        let search = CapacitySearch(p99TargetMicros: 10_000, startRate: 100, maxRate: 100_000, bisectionSteps: 6)
        let (capacity, steps) = await search.run { rate in report(rate: rate, knee: 1000) }
        #expect(steps.prefix(5).map(\.targetRate) == [100, 200, 400, 800, 1600])
        #expect(steps.prefix(4).allSatisfy(\.passed) && !steps[4].passed)
        #expect(capacity >= 950 && capacity <= 1000, "\(capacity) after \(steps.map(\.targetRate))")
        #expect(steps.count <= 5 + 6)
    }

    @Test func aGeneratorThatFallsBehindDoesNotPass() async {
        let search = CapacitySearch(p99TargetMicros: 10_000, startRate: 100, maxRate: 1000, bisectionSteps: 0)
        let (capacity, steps) = await search.run { rate in report(rate: rate, knee: 10_000, achieved: min(rate, 300)) }
        #expect(steps.map(\.passed) == [true, true, false])
        #expect(capacity == 200)
    }

    @Test func reportsZeroWhenTheFirstStepFails() async {
        let search = CapacitySearch(p99TargetMicros: 10_000, startRate: 100, maxRate: 1000, bisectionSteps: 0)
        let (capacity, _) = await search.run { rate in report(rate: rate, knee: 10) }
        #expect(capacity == 0)
    }

    /// rankd on the 1M snapshot misses a 1 ms target at a few calls per second (idle wake-ups, cold
    /// caches, a p99 of a dozen samples) and meets it at 1,600 req/s: low-rate misses must not end
    /// the ramp while the server keeps up.
    @Test func missesAtLowRatesDoNotEndTheRamp() async {
        let search = CapacitySearch(p99TargetMicros: 1_000, startRate: 100, maxRate: 100_000, bisectionSteps: 6)
        let (capacity, steps) = await search.run { rate in
            report(rate: rate, latency: rate < 500 ? 1_800_000 : rate <= 3000 ? 900_000 : 50_000_000)
        }
        #expect(steps.prefix(6).map(\.targetRate) == [100, 200, 400, 800, 1600, 3200])
        #expect(steps.prefix(6).map(\.passed) == [false, false, false, true, true, false])
        #expect(capacity >= 2850 && capacity <= 3000, "\(capacity) after \(steps.map(\.targetRate))")
    }

    /// When nothing has passed, a step whose p99 jumps beyond twice the lowest seen is queueing:
    /// the ramp ends there instead of running on to --max-rate, and the search looks below the start.
    @Test func aQueueingServerEndsTheRampWhenNothingPassed() async {
        let search = CapacitySearch(p99TargetMicros: 1_000, startRate: 100, maxRate: 100_000, bisectionSteps: 2)
        let (capacity, steps) = await search.run { rate in
            report(rate: rate, latency: rate <= 400 ? 1_500_000 : 40_000_000)
        }
        #expect(steps.map(\.targetRate) == [100, 200, 400, 800, 50, 25])
        #expect(steps.allSatisfy { !$0.passed })
        #expect(capacity == 0)
    }

    /// A rate that is not achieved (or errors) ends the ramp at once, before any pass as after.
    @Test func aRateNotAchievedEndsTheRampBeforeAnyPass() async {
        let search = CapacitySearch(p99TargetMicros: 1_000, startRate: 100, maxRate: 100_000, bisectionSteps: 0)
        let (capacity, steps) = await search.run { rate in
            report(rate: rate, latency: 2_000_000, achieved: rate / 2)
        }
        #expect(steps.map(\.targetRate) == [100])
        #expect(capacity == 0)
    }
}

import Foundation
import LoadHarness
import Testing

@Suite struct CapacitySearchTests {
    /// A fake server: p99 is 1 ms up to `knee` req/s, then 50 ms.
    private func report(rate: Double, knee: Double, achieved: Double? = nil) -> RunReport {
        let recorder = LatencyRecorder(warmupNanos: 0)
        let latency: UInt64 = rate <= knee ? 1_000_000 : 50_000_000
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
}

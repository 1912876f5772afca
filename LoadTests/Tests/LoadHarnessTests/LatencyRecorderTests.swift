import LoadHarness
import Testing

@Suite struct LatencyRecorderTests {
    private let ms: UInt64 = 1_000_000

    @Test func latencyIsMeasuredFromTheIntendedSendTime() {
        // A request due at t=0 that could only be sent at 50 ms (the server stalled) and was
        // answered at 60 ms took 60 ms, not the 10 ms a closed-loop tool would report.
        let recorder = LatencyRecorder(warmupNanos: 0)
        recorder.record(intendedNanos: 0, completedNanos: 60 * ms, outcome: .status(.ok))
        let (total, _) = recorder.snapshot()
        #expect(LatencySummary(total).max == 60_000 || LatencySummary(total).max == 60_031)
        #expect(total.histogram.valueAtPercentile(50) >= 59_900)
    }

    @Test func windowsAreKeyedByIntendedTimeAfterWarmup() {
        let recorder = LatencyRecorder(warmupNanos: 1000 * ms)
        recorder.record(intendedNanos: 500 * ms, completedNanos: 501 * ms, outcome: .status(.ok))  // warm-up
        recorder.record(intendedNanos: 1000 * ms, completedNanos: 1001 * ms, outcome: .status(.ok))  // window 0
        recorder.record(intendedNanos: 1999 * ms, completedNanos: 4000 * ms, outcome: .status(.ok))  // window 0
        recorder.record(intendedNanos: 3500 * ms, completedNanos: 3502 * ms, outcome: .status(.unavailable))
        recorder.record(intendedNanos: 3600 * ms, completedNanos: nil, outcome: .droppedByClient)
        #expect(recorder.warmupCount == 1)
        #expect(recorder.recordedCount == 4)
        let (total, windows) = recorder.snapshot()
        #expect(windows.map(\.index) == [0, 1, 2])
        #expect(windows[0].count == 2 && windows[0].errorCount == 0)
        #expect(windows[1].count == 0)
        #expect(windows[2].count == 2)
        #expect(windows[2].errors == ["UNAVAILABLE": 1, "CLIENT_DROPPED": 1])
        #expect(total.errors == ["UNAVAILABLE": 1, "CLIENT_DROPPED": 1])
        // The late completion (2001 ms) lands in window 0, where it was due.
        #expect(LatencySummary(windows[0]).max >= 2_000_000)
        #expect(total.histogram.totalCount == 3)
    }

    @Test func percentilesAndMergedWindowsAgree() {
        let recorder = LatencyRecorder(warmupNanos: 0)
        for second in 0..<4 {
            for value in 1...1000 {
                let intended = UInt64(second) * 1000 * ms + UInt64(value) * 1000
                recorder.record(
                    intendedNanos: intended, completedNanos: intended + UInt64(value) * 1000, outcome: .status(.ok))
            }
        }
        let (total, windows) = recorder.snapshot()
        let summary = LatencySummary(total)
        #expect(summary.count == 4000)
        #expect((495...505).contains(summary.p50))
        #expect((985...995).contains(summary.p99))
        #expect((998...1000).contains(summary.p999))
        #expect(summary.max == 1000)
        let merged = LatencyRecorder.merge(windows, indices: 1..<3)
        #expect(merged.count == 2000)
        #expect(LatencySummary(merged).p99 == LatencySummary(windows[1]).p99)
        #expect(LatencyRecorder.merge(windows, indices: 10..<12).count == 0)
    }

    @Test func reportSeparatesReloadWindowsFromSteadyState() {
        let recorder = LatencyRecorder(warmupNanos: 0)
        for second in 0..<10 {
            let slow = second == 5
            for index in 0..<100 {
                let intended = UInt64(second) * 1000 * ms + UInt64(index) * 10 * ms
                let latency = (slow ? 20 : 1) * ms
                recorder.record(
                    intendedNanos: intended, completedNanos: intended + latency,
                    outcome: slow && index == 0 ? .status(.unavailable) : .status(.ok))
            }
        }
        let event = ReloadEvent(atNanos: 5200 * ms, version: "B", status: "OK", message: "", durationNanos: 30 * ms)
        let report = RunReport(
            startedAt: .init(timeIntervalSince1970: 0), target: "127.0.0.1:1",
            configuration: LoadConfiguration(mode: .open(rate: 100, arrivals: .constant), durationNanos: 10_000 * ms),
            connections: 1, scenario: "t", recorder: recorder, generator: GeneratorStats(elapsedSeconds: 10),
            reloads: [event])
        #expect(report.achievedRate == 100)
        #expect(report.reloads.count == 1)
        let around = report.reloads[0].around!
        #expect(around.count == 400)  // windows 4, 5, 6 and 7
        #expect(around.errors == ["UNAVAILABLE": 1])
        #expect(around.p99 >= 19_000)
        let steady = report.steadyState!
        #expect(steady.count == 600 && steady.errorCount == 0 && steady.p99 <= 1001)
    }

    @Test func achievedRateCountsTheTimeTheServerNeededNotTheSchedule() {
        // 1000 calls scheduled over 1 s, the last answered at 2 s: 500 calls/s were achieved.
        let recorder = LatencyRecorder(warmupNanos: 0)
        for index in 0..<1000 {
            let intended = UInt64(index) * ms
            recorder.record(intendedNanos: intended, completedNanos: 2 * intended + ms, outcome: .status(.ok))
        }
        let report = RunReport(
            startedAt: .init(), target: "t",
            configuration: LoadConfiguration(mode: .open(rate: 1000, arrivals: .constant), durationNanos: 1000 * ms),
            connections: 1, scenario: "s", recorder: recorder, generator: GeneratorStats(elapsedSeconds: 2))
        #expect(report.achievedRate == 500)
        #expect(report.targetRate == 1000)
    }
}

import LoadHarness
import Testing

@Suite struct ArrivalScheduleTests {
    @Test func constantArrivalsAreEvenlySpacedWithoutDrift() {
        var schedule = ArrivalSchedule(rate: 3, process: .constant)
        let times = (0..<7).map { _ in schedule.next()! }
        #expect(times == [0, 333_333_333, 666_666_667, 1_000_000_000, 1_333_333_333, 1_666_666_667, 2_000_000_000])
        var fast = ArrivalSchedule(rate: 1_000_000, process: .constant)
        for _ in 0..<999_999 { _ = fast.next() }
        // The millionth arrival is exactly at 1 s: times come from the index, not a running sum.
        #expect(fast.next() == 999_999_000)
    }

    @Test func poissonArrivalsHaveTheRateAndExponentialGaps() {
        var schedule = ArrivalSchedule(rate: 1000, process: .poisson, seed: 42)
        let times = (0..<100_001).map { _ in Double(schedule.next()!) }
        #expect(times[0] == 0)
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }
        #expect(gaps.allSatisfy { $0 >= 0 })
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        let variance = gaps.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(gaps.count)
        // Exponential gaps: mean 1/rate = 1 ms and coefficient of variation 1.
        #expect(abs(mean - 1e6) / 1e6 < 0.02)
        #expect(abs(variance.squareRoot() / mean - 1) < 0.03)
        // P(gap > mean) = e^-1 for an exponential distribution.
        let above = Double(gaps.filter { $0 > 1e6 }.count) / Double(gaps.count)
        #expect(abs(above - 0.3679) < 0.01)
    }

    @Test func poissonScheduleReproducesFromItsSeed() {
        var first = ArrivalSchedule(rate: 50, process: .poisson, seed: 7)
        var second = ArrivalSchedule(rate: 50, process: .poisson, seed: 7)
        var other = ArrivalSchedule(rate: 50, process: .poisson, seed: 8)
        let a = (0..<100).map { _ in first.next()! }
        #expect(a == (0..<100).map { _ in second.next()! })
        #expect(a != (0..<100).map { _ in other.next()! })
    }
}

import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import GRPCServer

/// When freed connection memory is given back: ``MemoryReleaseSchedule`` on a virtual clock, and one
/// release end to end through ``MemoryRelease``'s background queue.
@Suite struct MemoryReleaseTests {
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    static func at(_ milliseconds: Int64) -> NIODeadline { start + .milliseconds(milliseconds) }

    /// Threshold 10, quiet 1 s, maximum wait 10 s, minimum interval 10 s (the defaults).
    static func schedule() -> MemoryReleaseSchedule { MemoryReleaseSchedule(threshold: 10) }

    @Test func nothingIsPendingBelowTheThreshold() {
        var schedule = Self.schedule()
        for i in 0..<9 {
            let wait = schedule.connectionClosed(at: Self.at(Int64(i)))
            #expect(wait == nil)
        }
        let decision1 = schedule.decide(at: Self.at(60_000))

        #expect(decision1 == .none)
    }

    @Test func aBurstIsReleasedOnceClosesPause() {
        var schedule = Self.schedule()
        var started: [Int] = []
        for i in 0..<100 {
            if let wait = schedule.connectionClosed(at: Self.at(Int64(i))) {
                started.append(i)
                #expect(wait == .seconds(1), "first decided after the quiet second")
            }
        }
        #expect(started == [9], "the tenth close starts the one pending release")
        // The last close was at 99 ms: due at 1,099 ms.
        let decision2 = schedule.decide(at: Self.at(1_009))

        #expect(decision2 == .wait(.milliseconds(90)))
        let decision3 = schedule.decide(at: Self.at(1_099))

        #expect(decision3 == .release(closed: 100))
        let decision4 = schedule.decide(at: Self.at(1_200))

        #expect(decision4 == .none)
        #expect(schedule.releases == 1)
    }

    @Test func closesThatNeverPauseAreReleasedByTheMaximumWait() {
        var schedule = Self.schedule()
        var released: [Int64] = []
        // A close every 100 ms for 30 s: never a 1 s pause.
        for ms in stride(from: Int64(0), to: 30_000, by: 100) {
            _ = schedule.connectionClosed(at: Self.at(ms))
            if case .release = schedule.decide(at: Self.at(ms)) { released.append(ms) }
        }
        // The threshold is reached at 900 ms: released 10 s later; reached again 10 closes (1 s) after that,
        // released 10 s later again.
        #expect(released == [10_900, 21_900])
    }

    @Test func releasesAreAtLeastTheMinimumIntervalApart() {
        var schedule = Self.schedule()
        for i in 0..<10 { _ = schedule.connectionClosed(at: Self.at(Int64(i))) }
        let decision5 = schedule.decide(at: Self.at(1_009))

        #expect(decision5 == .release(closed: 10))
        for i in 0..<10 { _ = schedule.connectionClosed(at: Self.at(2_000 + Int64(i))) }
        let decision6 = schedule.decide(at: Self.at(3_009))

        #expect(decision6 == .wait(.milliseconds(8_000)), "10 s after the first release")
        let decision7 = schedule.decide(at: Self.at(11_009))

        #expect(decision7 == .release(closed: 10))
    }

    @Test func theReleaseRunsOnTheBackgroundQueue() async throws {
        let released = NIOLockedValueBox(0)
        var schedule = MemoryReleaseSchedule(threshold: 3)
        schedule.quiet = .milliseconds(10)
        let release = MemoryRelease(
            schedule, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            release: { released.withLockedValue { $0 += 1 } })
        for _ in 0..<3 { release.connectionClosed() }
        // Polled up to 30 s: a loaded machine may run the queue late, but it must run.
        let deadline = NIODeadline.now() + .seconds(30)
        while released.withLockedValue({ $0 }) == 0, NIODeadline.now() < deadline {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        #expect(released.withLockedValue { $0 } == 1)
        #expect(release.releases == 1)
    }

    @Test func residentBytesAreRead() {
        #expect(MemoryRelease.residentBytes() > 1 << 20)
    }
}

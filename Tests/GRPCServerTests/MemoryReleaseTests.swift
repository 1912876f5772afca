import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import GRPCServer

/// When freed connection memory is given back (``MemoryRelease``), on real time with short intervals.
@Suite struct MemoryReleaseTests {
    final class Counter: Sendable {
        let value = NIOLockedValueBox(0)
        var count: Int { value.withLockedValue { $0 } }
        func increment() { value.withLockedValue { $0 += 1 } }
    }

    static func release(
        threshold: Int, quiet: TimeAmount = .milliseconds(50), maximumWait: TimeAmount = .milliseconds(400),
        minimumInterval: TimeAmount = .milliseconds(300), counter: Counter
    ) -> MemoryRelease {
        MemoryRelease(
            threshold: threshold, quiet: quiet, maximumWait: maximumWait, minimumInterval: minimumInterval,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), release: { counter.increment() })
    }

    static func sleep(_ milliseconds: UInt64) async throws {
        try await Task.sleep(nanoseconds: milliseconds * 1_000_000)
    }

    @Test func nothingIsReleasedBelowTheThreshold() async throws {
        let counter = Counter()
        let release = Self.release(threshold: 10, counter: counter)
        for _ in 0..<9 { release.connectionClosed() }
        try await Self.sleep(200)
        #expect(counter.count == 0)
    }

    @Test func aBurstIsReleasedOnceAfterClosesPause() async throws {
        let counter = Counter()
        let release = Self.release(threshold: 10, counter: counter)
        for _ in 0..<100 { release.connectionClosed() }
        try await Self.sleep(20)
        #expect(counter.count == 0, "not while the burst may go on")
        try await Self.sleep(250)
        #expect(counter.count == 1)
        #expect(release.releases == 1)
    }

    @Test func closesThatNeverPauseAreReleasedByTheMaximumWait() async throws {
        let counter = Counter()
        let release = Self.release(threshold: 5, counter: counter)
        let started = NIODeadline.now()
        // A close every 10 ms (never the 50 ms pause) for 600 ms.
        while NIODeadline.now() - started < .milliseconds(600) {
            release.connectionClosed()
            try await Self.sleep(10)
        }
        #expect(counter.count >= 1, "released by the 400 ms maximum wait although closes never paused")
        #expect(counter.count <= 2, "and not more often than the 300 ms minimum interval allows")
    }

    @Test func releasesAreAtLeastTheMinimumIntervalApart() async throws {
        let counter = Counter()
        let release = Self.release(threshold: 3, minimumInterval: .milliseconds(500), counter: counter)
        for _ in 0..<3 { release.connectionClosed() }
        try await Self.sleep(150)
        #expect(counter.count == 1)
        for _ in 0..<3 { release.connectionClosed() }
        try await Self.sleep(150)
        #expect(counter.count == 1, "the second burst waits for the minimum interval")
        try await Self.sleep(500)
        #expect(counter.count == 2)
    }

    @Test func residentBytesAreRead() {
        #expect(MemoryRelease.residentBytes() > 1 << 20)
    }
}

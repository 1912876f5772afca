import CMalloc
import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Gives the memory of closed connections back to the operating system after a burst of closes.
///
/// Why: each connection allocates tens of kilobytes (its nghttp2 session, buffers, NIO channel)
/// on its event loop's malloc arena. After 10,000 connections close, glibc keeps the freed pages
/// (fragmented between longer-lived allocations), so every connection storm left rankd's resident
/// set higher: 30 → 216 → 297 → 389 MB over three idle floods with nothing open in between
/// (docs/BENCHMARKS.md). `malloc_trim(0)` returns those pages (back to ~32 MB each time).
///
/// Once ``MemoryReleaseSchedule/threshold`` connections have closed since the last release, one release runs on a
/// background queue when closes have paused for a second (the storm is over), or 10 s
/// after the threshold was reached if they never pause, and never sooner than 10 s
/// after the previous one: bounded work, off the event loops, only after bursts.
final class MemoryRelease: Sendable {
    private let release: @Sendable () -> Void
    private let logger: Logger
    private let queue = DispatchQueue(label: "rankd.grpc.memory-release", qos: .utility)
    private let schedule: NIOLockedValueBox<MemoryReleaseSchedule>

    /// Releases run so far.
    var releases: Int { schedule.withLockedValue { $0.releases } }

    init(
        _ schedule: MemoryReleaseSchedule, logger: Logger,
        release: @escaping @Sendable () -> Void = MemoryRelease.trimMalloc
    ) {
        self.schedule = NIOLockedValueBox(schedule)
        self.logger = logger
        self.release = release
    }

    /// Called once per closed connection (from any event loop).
    func connectionClosed() {
        let now = NIODeadline.now()
        if let wait = schedule.withLockedValue({ $0.connectionClosed(at: now) }) { check(after: wait) }
    }

    private func check(after wait: TimeAmount) {
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(max(wait, .zero).nanoseconds))) { [self] in
            switch schedule.withLockedValue({ $0.decide(at: .now()) }) {
            case .none: return
            case .wait(let wait): return check(after: wait)
            case .release(let closed):
                let before = Self.residentBytes()
                let started = NIODeadline.now()
                release()
                let took = NIODeadline.now() - started
                logger.info(
                    "returned freed connection memory to the system",
                    metadata: [
                        "closed_connections": "\(closed)", "rss_mib_before": "\(before >> 20)",
                        "rss_mib_after": "\(Self.residentBytes() >> 20)",
                        "took_ms": "\(took.nanoseconds / 1_000_000)",
                    ])
            }
        }
    }

    /// glibc's `malloc_trim(0)`: every arena's free pages go back to the system.
    @Sendable static func trimMalloc() { rankd_malloc_trim() }

    /// This process's resident set (bytes), from /proc/self/statm; 0 where that is not available.
    static func residentBytes() -> Int {
        #if canImport(Glibc)
            let fd = open("/proc/self/statm", O_RDONLY)
            guard fd >= 0 else { return 0 }
            defer { close(fd) }
            var bytes = [UInt8](repeating: 0, count: 128)
            let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { return 0 }
            // "size resident shared ...", in pages.
            let fields = bytes[..<count].split(separator: UInt8(ascii: " "))
            guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return 0 }
            return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
        #else
            return 0
        #endif
    }
}

/// When ``MemoryRelease`` releases: the decisions alone, on times given by the caller (so tests step a
/// virtual clock).
struct MemoryReleaseSchedule: Sendable {
    let threshold: Int
    var quiet: TimeAmount = .seconds(1)
    var maximumWait: TimeAmount = .seconds(10)
    var minimumInterval: TimeAmount = .seconds(10)

    private(set) var closedSinceRelease = 0
    /// When the threshold was reached (nil: not yet, or no release pending).
    private(set) var pendingSince: NIODeadline?
    private var lastClose = NIODeadline.distantPast
    private var lastRelease: NIODeadline?
    private(set) var releases = 0

    enum Decision: Equatable {
        /// Nothing pending.
        case none
        /// Decide again this much later.
        case wait(TimeAmount)
        /// Release now; this many connections closed since the last release.
        case release(closed: Int)
    }

    init(threshold: Int) { self.threshold = threshold }

    /// Counts a close. When it reaches the threshold, returns when the first ``decide(at:)`` is due
    /// (after ``quiet``); otherwise nil.
    mutating func connectionClosed(at now: NIODeadline) -> TimeAmount? {
        closedSinceRelease += 1
        lastClose = now
        guard pendingSince == nil, closedSinceRelease >= threshold else { return nil }
        pendingSince = now
        return quiet
    }

    /// Not sooner than ``minimumInterval`` after the last release; then once closes have paused for
    /// ``quiet``, or at the latest ``maximumWait`` after the threshold was reached.
    mutating func decide(at now: NIODeadline) -> Decision {
        guard let since = pendingSince else { return .none }
        let earliest = lastRelease.map { $0 + minimumInterval } ?? .distantPast
        let due = max(earliest, min(lastClose + quiet, since + maximumWait))
        if due > now { return .wait(due - now) }
        defer {
            pendingSince = nil
            closedSinceRelease = 0
            lastRelease = now
            releases += 1
        }
        return .release(closed: closedSinceRelease)
    }
}

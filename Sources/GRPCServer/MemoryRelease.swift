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
/// Once ``threshold`` connections have closed since the last release, one release runs on a
/// background queue when closes have paused for ``quiet`` (the storm is over), or ``maximumWait``
/// after the threshold was reached if they never pause, and never sooner than ``minimumInterval``
/// after the previous one: bounded work, off the event loops, only after bursts.
final class MemoryRelease: Sendable {
    let threshold: Int
    let quiet: TimeAmount
    let maximumWait: TimeAmount
    let minimumInterval: TimeAmount
    private let release: @Sendable () -> Void
    private let logger: Logger
    private let queue = DispatchQueue(label: "rankd.grpc.memory-release", qos: .utility)
    private let state = NIOLockedValueBox(State())

    private struct State {
        var closedSinceRelease = 0
        /// When the threshold was reached (nil: not yet, or no release pending).
        var pendingSince: NIODeadline?
        var lastClose = NIODeadline.distantPast
        var lastRelease: NIODeadline?
        var releases = 0
    }

    /// Releases run so far.
    var releases: Int { state.withLockedValue { $0.releases } }

    init(
        threshold: Int, quiet: TimeAmount = .seconds(1), maximumWait: TimeAmount = .seconds(10),
        minimumInterval: TimeAmount = .seconds(10), logger: Logger,
        release: @escaping @Sendable () -> Void = MemoryRelease.trimMalloc
    ) {
        self.threshold = threshold
        self.quiet = quiet
        self.maximumWait = maximumWait
        self.minimumInterval = minimumInterval
        self.logger = logger
        self.release = release
    }

    /// Called once per closed connection (from any event loop).
    func connectionClosed() {
        let now = NIODeadline.now()
        let start = state.withLockedValue { state -> Bool in
            state.closedSinceRelease += 1
            state.lastClose = now
            guard state.pendingSince == nil, state.closedSinceRelease >= threshold else { return false }
            state.pendingSince = now
            return true
        }
        if start { check(after: quiet) }
    }

    private func check(after wait: TimeAmount) {
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(max(wait, .zero).nanoseconds))) { [self] in
            let now = NIODeadline.now()
            let decision = state.withLockedValue { state -> (closed: Int, wait: TimeAmount?) in
                guard let since = state.pendingSince else { return (0, nil) }
                // Not sooner than the minimum interval; then once closes have paused, or at the latest
                // `maximumWait` after the threshold was reached.
                let earliest = state.lastRelease.map { $0 + minimumInterval } ?? .distantPast
                let due = max(earliest, min(state.lastClose + quiet, since + maximumWait))
                if due > now { return (0, due - now) }
                defer {
                    state.pendingSince = nil
                    state.closedSinceRelease = 0
                    state.lastRelease = now
                    state.releases += 1
                }
                return (state.closedSinceRelease, nil)
            }
            if let wait = decision.wait { return check(after: wait) }
            guard decision.closed > 0 else { return }
            let before = Self.residentBytes()
            let started = NIODeadline.now()
            release()
            let took = NIODeadline.now() - started
            logger.info(
                "returned freed connection memory to the system",
                metadata: [
                    "closed_connections": "\(decision.closed)", "rss_mib_before": "\(before >> 20)",
                    "rss_mib_after": "\(Self.residentBytes() >> 20)",
                    "took_ms": "\(took.nanoseconds / 1_000_000)",
                ])
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

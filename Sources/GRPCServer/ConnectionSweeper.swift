import NIOConcurrencyHelpers
import NIOCore

/// The connection timers of one event loop: the idle timeout and the watchdog of every connection
/// on that loop are checked by one periodic sweep, not by a scheduled task per connection.
///
/// Why: NIO keeps scheduled tasks in a binary heap whose `cancel` finds the task by a linear scan.
/// With a task per connection (idle timer, watchdog) every Rank call that re-armed its idle timer,
/// and every connection that closed, scanned the whole heap: with 10,000 idle connections open,
/// that heap work was a quarter of rankd's CPU and sat on the loops serving calls. Here a call
/// only writes a timestamp (``GRPCServerConnectionHandler/idleSince``), a connection joins and
/// leaves an intrusive list in O(1), and the heap holds one task per loop plus the calls' own
/// deadlines.
///
/// The sweep runs every ``period`` while the loop has connections: a quarter of the shortest of
/// the idle, handshake and stall timeouts (at least 10 ms, at most 5 s), so a limit is enforced at
/// most a quarter late. A sweep starts at most ``closeBudget`` closes in one slice and continues
/// ``slicePause`` later: connections that all go idle together (10,000 opened within a second) are
/// closed in slices of about half a millisecond of work, with the loop's sockets served in between.
/// (A continuation must be *scheduled* later: NIO runs tasks submitted by a task in the same tick,
/// before it polls its sockets again.)
///
/// Confined to its event loop: every method runs there.
final class ConnectionSweeper: @unchecked Sendable {
    let eventLoop: any EventLoop
    let period: TimeAmount
    /// Closes one slice of a sweep may start before it yields the loop (each is a GOAWAY write and a
    /// close, tens of microseconds with the kernel's share).
    static let closeBudget = 8
    /// The pause between two slices of one sweep: up to 8,000 closes a second per loop.
    static let slicePause = TimeAmount.milliseconds(1)

    private var head: GRPCServerConnectionHandler?
    /// The next connection the sweep in progress visits (nil: no sweep in progress).
    private var cursor: GRPCServerConnectionHandler?
    /// A sweep is scheduled or in progress.
    private var armed = false
    private(set) var count = 0

    init(eventLoop: any EventLoop, period: TimeAmount) {
        self.eventLoop = eventLoop
        self.period = period
    }

    /// The sweep period for `configuration`.
    static func period(for configuration: GRPCServerConfiguration) -> TimeAmount {
        let shortest = min(
            configuration.idleTimeout.nanoseconds, configuration.handshakeTimeout.nanoseconds,
            configuration.stallTimeout.nanoseconds)
        return .nanoseconds(min(max(shortest / 4, 10_000_000), 5_000_000_000))
    }

    func add(_ connection: GRPCServerConnectionHandler) {
        eventLoop.assertInEventLoop()
        guard connection.sweeper == nil else { return }
        connection.sweeper = self
        connection.sweepNext = head
        head?.sweepPrevious = connection
        head = connection
        count += 1
        arm()
    }

    func remove(_ connection: GRPCServerConnectionHandler) {
        eventLoop.assertInEventLoop()
        guard connection.sweeper === self else { return }
        connection.sweeper = nil
        if cursor === connection { cursor = connection.sweepNext }
        if head === connection { head = connection.sweepNext }
        connection.sweepPrevious?.sweepNext = connection.sweepNext
        connection.sweepNext?.sweepPrevious = connection.sweepPrevious
        connection.sweepPrevious = nil
        connection.sweepNext = nil
        count -= 1
    }

    private func arm() {
        guard !armed, head != nil else { return }
        armed = true
        eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: period) { [self] in
            cursor = head
            continueSweep()
        }
    }

    /// Visits connections from ``cursor`` until the list ends or ``closeBudget`` closes were started,
    /// then continues after ``slicePause`` or waits for the next period.
    private func continueSweep() {
        let now = eventLoop.now
        var closes = 0
        while let connection = cursor, closes < Self.closeBudget {
            cursor = connection.sweepNext
            if connection.sweep(now: now) { closes += 1 }
        }
        if cursor != nil {
            eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: Self.slicePause) { [self] in continueSweep() }
        } else {
            armed = false
            arm()
        }
    }
}

/// One ``ConnectionSweeper`` per event loop, created on first use.
final class ConnectionSweepers: Sendable {
    private let sweepers = NIOLockedValueBox<[ObjectIdentifier: ConnectionSweeper]>([:])
    private let period: TimeAmount

    init(configuration: GRPCServerConfiguration) {
        period = ConnectionSweeper.period(for: configuration)
    }

    func sweeper(for eventLoop: any EventLoop) -> ConnectionSweeper {
        sweepers.withLockedValue { sweepers in
            let key = ObjectIdentifier(eventLoop)
            if let sweeper = sweepers[key] { return sweeper }
            let sweeper = ConnectionSweeper(eventLoop: eventLoop, period: period)
            sweepers[key] = sweeper
            return sweeper
        }
    }
}

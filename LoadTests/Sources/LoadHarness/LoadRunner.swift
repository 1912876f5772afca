import Atomics
import Foundation
public import GRPCClient
import GRPCCore
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Nanoseconds on the monotonic clock (`CLOCK_MONOTONIC` via NIO).
@inline(__always)
public func monotonicNanos() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

/// What a run does: open loop at a rate, or closed loop with a fixed number of workers.
public struct LoadConfiguration: Sendable {
    public enum Mode: Sendable, Equatable {
        /// Requests are sent on a fixed schedule whatever the server does.
        case open(rate: Double, arrivals: ArrivalProcess)
        /// `concurrency` workers each keep one request in flight.
        case closed(concurrency: Int)
    }

    public var mode: Mode
    /// Measured time after the warm-up.
    public var durationNanos: UInt64
    public var warmupNanos: UInt64
    /// Upper bound on requests (warm-up included); the run ends at whichever bound comes first.
    public var maxRequests: Int
    /// Per-call deadline (sent as `grpc-timeout`).
    public var timeoutNanos: UInt64
    /// Open loop: requests due while this many are in flight are dropped and counted.
    public var maxInFlight: Int
    /// Seed of the Poisson schedule.
    public var seed: UInt64

    public init(
        mode: Mode, durationNanos: UInt64, warmupNanos: UInt64 = 0, maxRequests: Int = .max,
        timeoutNanos: UInt64 = 10_000_000_000, maxInFlight: Int = 20_000, seed: UInt64 = 1
    ) {
        self.mode = mode
        self.durationNanos = durationNanos
        self.warmupNanos = warmupNanos
        self.maxRequests = maxRequests
        self.timeoutNanos = timeoutNanos
        self.maxInFlight = maxInFlight
        self.seed = seed
    }
}

/// Counts kept by the generator itself (the recorder holds the latencies).
public struct GeneratorStats: Sendable, Codable, Equatable {
    /// Requests handed to a connection.
    public var sent = 0
    /// Open loop: requests not sent because `maxInFlight` were outstanding.
    public var dropped = 0
    /// Open loop: worst delay between a request's intended time and its hand-off (µs). Large
    /// values mean the generator, not the server, was the bottleneck.
    public var maxSendLagMicros: UInt64 = 0
    /// Requests still outstanding when the drain timeout ended.
    public var unfinished = 0
    /// Seconds from the first scheduled request to the last completion.
    public var elapsedSeconds = 0.0

    public init(
        sent: Int = 0, dropped: Int = 0, maxSendLagMicros: UInt64 = 0, unfinished: Int = 0, elapsedSeconds: Double = 0
    ) {
        self.sent = sent
        self.dropped = dropped
        self.maxSendLagMicros = maxSendLagMicros
        self.unfinished = unfinished
        self.elapsedSeconds = elapsedSeconds
    }
}

/// Drives one run over already-open connections and records into a ``LatencyRecorder``.
public final class LoadRunner: Sendable {
    private let connections: [GRPCClientConnection]
    private let pool: RequestPool
    private let configuration: LoadConfiguration
    public let recorder: LatencyRecorder
    private let inFlight = ManagedAtomic<Int>(0)
    private let issued = ManagedAtomic<Int>(0)
    /// Monotonic time at which the schedule starts (set by `run`).
    private let startBox = NIOLockedValueBox<UInt64>(0)

    public init(connections: [GRPCClientConnection], pool: RequestPool, configuration: LoadConfiguration) {
        precondition(!connections.isEmpty, "a run needs at least one connection")
        self.connections = connections
        self.pool = pool
        self.configuration = configuration
        self.recorder = LatencyRecorder(warmupNanos: configuration.warmupNanos)
    }

    /// Requests outstanding now (for the progress line).
    public var currentInFlight: Int { inFlight.load(ordering: .relaxed) }

    /// Monotonic nanoseconds at which the schedule started (0 before `run`).
    public var startNanos: UInt64 { startBox.withLockedValue { $0 } }

    /// Runs to the end of the schedule (or `maxRequests`), then waits up to the call deadline
    /// plus one second for outstanding calls. Bounded in time.
    public func run() async -> GeneratorStats {
        let start = monotonicNanos()
        startBox.withLockedValue { $0 = start }
        var stats: GeneratorStats
        switch configuration.mode {
        case .open(let rate, let arrivals):
            stats = await runOnThread { self.sendOpenLoop(rate: rate, arrivals: arrivals, start: start) }
        case .closed(let concurrency):
            stats = await runClosedLoop(concurrency: concurrency, start: start)
        }
        let drainDeadline = monotonicNanos() + configuration.timeoutNanos + 1_000_000_000
        while inFlight.load(ordering: .acquiring) > 0 && monotonicNanos() < drainDeadline {
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        stats.unfinished = inFlight.load(ordering: .acquiring)
        stats.elapsedSeconds = Double(monotonicNanos() - start) / 1e9
        return stats
    }

    // MARK: Open loop

    /// The sender: sleeps until the next intended time, hands every request that is due to its
    /// connection's event loop in one batch, never waits for a response.
    private func sendOpenLoop(rate: Double, arrivals: ArrivalProcess, start: UInt64) -> GeneratorStats {
        var stats = GeneratorStats()
        var schedule = ArrivalSchedule(rate: rate, process: arrivals, seed: configuration.seed)
        let end = configuration.warmupNanos + configuration.durationNanos
        var batches = [[(index: Int, intended: UInt64)]](repeating: [], count: connections.count)
        var index = 0
        var due = schedule.next()
        while let intended = due, intended < end, index < configuration.maxRequests {
            let now = monotonicNanos() - start
            if intended > now {
                sleepNanos(intended - now)
                continue
            }
            while let intended = due, intended <= now, intended < end, index < configuration.maxRequests {
                stats.maxSendLagMicros = max(stats.maxSendLagMicros, (now - intended) / 1000)
                if inFlight.load(ordering: .relaxed) >= configuration.maxInFlight {
                    recorder.record(intendedNanos: intended, completedNanos: nil, outcome: .droppedByClient)
                    stats.dropped += 1
                } else {
                    inFlight.wrappingIncrement(ordering: .relaxed)
                    batches[index % connections.count].append((index, intended))
                    stats.sent += 1
                }
                index += 1
                due = schedule.next()
            }
            for (slot, connection) in connections.enumerated() where !batches[slot].isEmpty {
                let batch = batches[slot]
                batches[slot].removeAll(keepingCapacity: true)
                connection.eventLoop.execute {
                    for item in batch {
                        self.send(item.index, on: connection, intended: item.intended, start: start)
                    }
                }
            }
        }
        return stats
    }

    /// Starts call `index` on `connection`; records it against `intended` when it completes.
    private func send(_ index: Int, on connection: GRPCClientConnection, intended: UInt64, start: UInt64) {
        let request = pool[index]
        connection.unary(
            path: request.path, request: request.message, timeout: .nanoseconds(Int64(configuration.timeoutNanos))
        ) { result in
            self.finish(result, intended: intended, completed: monotonicNanos() - start)
        }
    }

    /// Records a completed call.
    fileprivate func finish(_ result: GRPCCallResult, intended: UInt64, completed: UInt64) {
        recorder.record(intendedNanos: intended, completedNanos: completed, outcome: .status(result.status.code))
        inFlight.wrappingDecrement(ordering: .relaxed)
    }

    // MARK: Closed loop

    private func runClosedLoop(concurrency: Int, start: UInt64) async -> GeneratorStats {
        let end = configuration.warmupNanos + configuration.durationNanos
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let remaining = ManagedAtomic<Int>(concurrency)
            let workerDone: @Sendable () -> Void = {
                if remaining.wrappingDecrementThenLoad(ordering: .acquiringAndReleasing) == 0 {
                    continuation.resume()
                }
            }
            for worker in 0..<concurrency {
                let connection = connections[worker % connections.count]
                let worker = ClosedLoopWorker(
                    runner: self, connection: connection, start: start, end: end, done: workerDone)
                connection.eventLoop.execute { worker.issue() }
            }
        }
        let sent = issued.load(ordering: .acquiring)
        return GeneratorStats(sent: min(sent, configuration.maxRequests))
    }

    /// The next closed-loop call's index, or nil when the run's request bound is reached.
    fileprivate func claimClosedLoopCall() -> Int? {
        let index = issued.loadThenWrappingIncrement(ordering: .relaxed)
        guard index < configuration.maxRequests else { return nil }
        inFlight.wrappingIncrement(ordering: .relaxed)
        return index
    }

    fileprivate var requestPool: RequestPool { pool }
    fileprivate var callTimeout: TimeAmount { .nanoseconds(Int64(configuration.timeoutNanos)) }

    // MARK: Threads and sleeping

    /// Runs blocking `body` on its own thread so sleeping never ties up the concurrency pool or
    /// an event loop.
    private func runOnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: body()) }
            thread.start()
        }
    }
}

/// One closed-loop worker: keeps one call in flight on its connection, starting the next from
/// the previous one's completion (on the connection's event loop). It owns the one result
/// callback it passes to every call, so a call allocates nothing for it.
private final class ClosedLoopWorker: @unchecked Sendable {
    // Mutable state is touched only on `connection.eventLoop` (one call in flight at a time).
    private let runner: LoadRunner
    private let connection: GRPCClientConnection
    private let start: UInt64
    private let end: UInt64
    private let done: @Sendable () -> Void
    private var sentAt: UInt64 = 0
    private var onResult: (@Sendable (GRPCCallResult) -> Void)?
    /// Inside `connection.unary`: a call that fails at once (connection closed) completes
    /// there, and the next one must not start from inside it (unbounded recursion).
    private var starting = false

    init(
        runner: LoadRunner, connection: GRPCClientConnection, start: UInt64, end: UInt64,
        done: @escaping @Sendable () -> Void
    ) {
        self.runner = runner
        self.connection = connection
        self.start = start
        self.end = end
        self.done = done
    }

    /// Sends the next call, or ends the worker when time or the request bound runs out.
    func issue() {
        let now = monotonicNanos() - start
        guard now < end, let index = runner.claimClosedLoopCall() else {
            onResult = nil  // breaks the worker ↔ callback cycle
            done()
            return
        }
        // Closed loop: the request is sent the moment the previous one finished, so the intended
        // time is the actual send time (this is exactly the coordinated omission open loop avoids).
        sentAt = now
        if onResult == nil { onResult = { [self] result in completed(result) } }
        let request = runner.requestPool[index]
        starting = true
        connection.unary(path: request.path, request: request.message, timeout: runner.callTimeout, onResult: onResult!)
        starting = false
    }

    private func completed(_ result: GRPCCallResult) {
        runner.finish(result, intended: sentAt, completed: monotonicNanos() - start)
        if starting {
            connection.eventLoop.execute { self.issue() }
        } else {
            issue()
        }
    }
}

private func sleepNanos(_ nanos: UInt64) {
    var request = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
}

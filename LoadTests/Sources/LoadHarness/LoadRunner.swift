import Atomics
import Foundation
public import GRPCClient
import GRPCServer
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
                        self.send(item.index, on: connection, intended: item.intended, start: start, onDone: nil)
                    }
                }
            }
        }
        return stats
    }

    /// Starts call `index` on `connection`; records it against `intended` when it completes.
    private func send(
        _ index: Int, on connection: GRPCClientConnection, intended: UInt64, start: UInt64,
        onDone: (@Sendable () -> Void)?
    ) {
        let request = pool[index]
        connection.unary(
            path: request.path, request: request.message, timeout: .nanoseconds(Int64(configuration.timeoutNanos))
        ).whenComplete { result in
            let completed = monotonicNanos() - start
            let code: GRPCStatus.Code
            switch result {
            case .success(let call): code = call.status.code
            case .failure(let error): code = (error as? GRPCStatus)?.code ?? .unavailable
            }
            self.recorder.record(intendedNanos: intended, completedNanos: completed, outcome: .status(code))
            self.inFlight.wrappingDecrement(ordering: .relaxed)
            onDone?()
        }
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
                connection.eventLoop.execute {
                    self.issueClosedLoop(on: connection, start: start, end: end, workerDone: workerDone)
                }
            }
        }
        let sent = issued.load(ordering: .acquiring)
        return GeneratorStats(sent: min(sent, configuration.maxRequests))
    }

    /// One worker step: send, and on completion send again until time or count runs out.
    private func issueClosedLoop(
        on connection: GRPCClientConnection, start: UInt64, end: UInt64, workerDone: @escaping @Sendable () -> Void
    ) {
        let now = monotonicNanos() - start
        guard now < end else {
            workerDone()
            return
        }
        let index = issued.loadThenWrappingIncrement(ordering: .relaxed)
        guard index < configuration.maxRequests else {
            workerDone()
            return
        }
        inFlight.wrappingIncrement(ordering: .relaxed)
        // Closed loop: the request is sent the moment the previous one finished, so the intended
        // time is the actual send time (this is exactly the coordinated omission open loop avoids).
        send(index, on: connection, intended: now, start: start) {
            self.issueClosedLoop(on: connection, start: start, end: end, workerDone: workerDone)
        }
    }

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

private func sleepNanos(_ nanos: UInt64) {
    var request = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
}

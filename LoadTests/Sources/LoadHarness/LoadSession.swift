import Foundation
public import GRPCClient
public import NIOCore

/// What the progress line shows, sampled once a second.
public struct ProgressSample: Sendable {
    /// Seconds since the schedule started.
    public var elapsedSeconds: Double
    public var inWarmup: Bool
    public var recorded: Int
    public var inFlight: Int
    /// The last full window (by intended time), if any.
    public var lastWindow: LatencySummary?
}

/// One complete run: connections, the load, optional reloads, progress sampling and the report.
public enum LoadSession {
    /// Opens `count` connections to `target` (each its own HTTP/2 session; each its own TLS
    /// handshake when `tls` is given).
    ///
    /// - Throws: ``LoadTestError`` naming the target when it cannot be reached.
    public static func connect(
        to target: TargetAddress, count: Int, group: any EventLoopGroup, tls: ClientTLSCredentials? = nil
    ) async throws(LoadTestError) -> [GRPCClientConnection] {
        var connections: [GRPCClientConnection] = []
        for _ in 0..<count {
            do {
                connections.append(
                    try await GRPCClientConnection.connect(
                        host: target.host, port: target.port, group: group, tls: tls))
            } catch {
                for connection in connections { await connection.close() }
                throw LoadTestError("cannot connect to \(target): \(error)")
            }
        }
        return connections
    }

    /// Runs one load over `connections` and builds its report.
    ///
    /// - Parameters:
    ///   - reloads: activations to perform during the measured part, if any.
    ///   - progress: called about once a second from a background task.
    public static func run(
        target: TargetAddress, connections: [GRPCClientConnection], pool: RequestPool, scenarioName: String,
        configuration: LoadConfiguration, reloads: ReloadScheduler? = nil,
        progress: (@Sendable (ProgressSample) -> Void)? = nil
    ) async -> RunReport {
        let startedAt = Date()
        let runner = LoadRunner(connections: connections, pool: pool, configuration: configuration)
        let end = configuration.warmupNanos + configuration.durationNanos
        let stats = await withTaskGroup(of: GeneratorStats?.self) { group in
            group.addTask { await runner.run() }
            if let reloads {
                group.addTask {
                    // The runner sets its start time first thing; wait for it.
                    while runner.startNanos == 0 { try? await Task.sleep(nanoseconds: 1_000_000) }
                    await reloads.run(start: runner.startNanos, warmupNanos: configuration.warmupNanos, endNanos: end)
                    return nil
                }
            }
            if let progress {
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(nanoseconds: 1_000_000_000)
                        let start = runner.startNanos
                        guard start > 0, !Task.isCancelled else { continue }
                        let elapsed = monotonicNanos() - start
                        let lastFull = (Int64(elapsed) - Int64(configuration.warmupNanos)) / 1_000_000_000 - 1
                        progress(
                            ProgressSample(
                                elapsedSeconds: Double(elapsed) / 1e9, inWarmup: elapsed < configuration.warmupNanos,
                                recorded: runner.recorder.recordedCount, inFlight: runner.currentInFlight,
                                lastWindow: lastFull >= 0 ? runner.recorder.windowSummary(Int(lastFull)) : nil))
                    }
                    return nil
                }
            }
            var result = GeneratorStats()
            while let next = await group.next() {
                if let stats = next {
                    result = stats
                    group.cancelAll()  // stops the progress task; the reload task ends at `end`
                }
            }
            return result
        }
        return RunReport(
            startedAt: startedAt, target: target.description, configuration: configuration,
            connections: connections.count, scenario: scenarioName, recorder: runner.recorder, generator: stats,
            reloads: reloads?.timeline ?? [])
    }
}

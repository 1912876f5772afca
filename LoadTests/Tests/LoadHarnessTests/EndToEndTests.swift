import Foundation
import GRPCClient
import LoadHarness
import NIOPosix
import Testing

/// Short runs against a real `rankd --enable-test-services` on a loopback port.
///
/// The binary is `$RANKD_BIN`, or the first that exists of the root package's usual build
/// outputs (`make loadtest-test` builds one and sets `RANKD_BIN`). Without one the suite is
/// skipped and says how to get one.
@Suite(.enabled(if: RankdProcess.binary != nil, "build rankd first (or set RANKD_BIN): see docs/LOADTEST.md"))
struct EndToEndTests {
    /// Starts rankd, opens `count` connections, runs `body`, and tears everything down.
    private func withRankd<T>(
        connections count: Int, _ body: (TargetAddress, [GRPCClientConnection], RankdProcess) async throws -> T
    ) async throws -> T {
        let server = try RankdProcess.start()
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let target = try TargetAddress(parsing: server.address)
        let connections = try await LoadSession.connect(to: target, count: count, group: group)
        let result = try await body(target, connections, server)
        for connection in connections { await connection.close() }
        try await group.shutdownGracefully()
        return result
    }

    @Test func openLoopRunAgainstRankdRecordsEveryScheduledCall() async throws {
        // 2 ms of server-side delay on every call: nothing can be faster than that.
        let scenario = Scenario(
            name: "e2e", seed: 1, poolSize: 8, requests: [.init(weight: 1, echo: .init(delayMs: 2))])
        let configuration = LoadConfiguration(
            mode: .open(rate: 500, arrivals: .poisson), durationNanos: 1_500_000_000, warmupNanos: 500_000_000)
        let report = try await withRankd(connections: 2) { target, connections, _ in
            await LoadSession.run(
                target: target, connections: connections, pool: try RequestPool(scenario: scenario),
                scenarioName: "e2e",
                configuration: configuration)
        }

        #expect(report.latency.errors.isEmpty, "\(report.latency.errors)")
        #expect(report.generator.unfinished == 0 && report.generator.dropped == 0)
        // Poisson at 500/s over 2 s: about 1000 calls, 750 of them measured.
        #expect((850...1150).contains(report.generator.sent), "sent \(report.generator.sent)")
        #expect(abs(report.latency.count - 750) < 120, "recorded \(report.latency.count)")
        #expect(report.latency.p50 >= 2000, "p50 \(report.latency.p50) µs is below the 2 ms server delay")
        #expect(report.windows.count == 2)
        let svg = SVGChart.render(report)
        #expect(svg.contains("<polyline"))
    }

    /// The point of the harness: the server stops for 400 ms. A closed loop sees that in only its
    /// few in-flight calls, so its p99 stays low; the open loop charges every call that was due
    /// during the stall, from its intended send time, so its p99 shows the stall.
    @Test func serverStallShowsInOpenLoopTailButNotInClosedLoopTail() async throws {
        func runWithStall(_ mode: LoadConfiguration.Mode) async throws -> RunReport {
            try await withRankd(connections: 2) { target, connections, server in
                let configuration = LoadConfiguration(
                    mode: mode, durationNanos: 2_000_000_000, warmupNanos: 200_000_000)
                let pool = try RequestPool(scenario: .emptyEcho)
                async let report = LoadSession.run(
                    target: target, connections: connections, pool: pool, scenarioName: "stall",
                    configuration: configuration)
                try await Task.sleep(nanoseconds: 1_000_000_000)
                #expect(server.process.suspend())
                try await Task.sleep(nanoseconds: 400_000_000)
                #expect(server.process.resume())
                return await report
            }
        }
        let open = try await runWithStall(.open(rate: 400, arrivals: .constant))
        let closed = try await runWithStall(.closed(concurrency: 4))
        #expect(open.latency.errors.isEmpty && closed.latency.errors.isEmpty)
        // About 160 of the open loop's 800 calls were due during the stall.
        #expect(open.latency.p99 >= 250_000, "open-loop p99 \(open.latency.p99) µs hides the stall")
        #expect(open.latency.p90 >= 100_000, "open-loop p90 \(open.latency.p90) µs")
        // The closed loop saw the stall (its max) but only in 4 of thousands of calls.
        #expect(closed.latency.max >= 350_000, "closed-loop max \(closed.latency.max) µs")
        #expect(closed.latency.p99 < 100_000, "closed-loop p99 \(closed.latency.p99) µs")
    }

    @Test func closedLoopKeepsConcurrencyAndStopsAtMaxRequests() async throws {
        let configuration = LoadConfiguration(
            mode: .closed(concurrency: 4), durationNanos: 10_000_000_000, maxRequests: 2000)
        let begin = monotonicNanos()
        let report = try await withRankd(connections: 1) { target, connections, _ in
            await LoadSession.run(
                target: target, connections: connections, pool: try RequestPool(scenario: .emptyEcho),
                scenarioName: "empty", configuration: configuration)
        }
        let seconds = Double(monotonicNanos() - begin) / 1e9

        #expect(report.latency.count == 2000 && report.generator.sent == 2000)
        #expect(report.latency.errors.isEmpty, "\(report.latency.errors)")
        #expect(seconds < 9, "the request bound, not the duration, ended the run")
    }

    @Test func reloadAgainstAServerWithoutAdminServiceIsReportedUnimplemented() async throws {
        let report = try await withRankd(connections: 2) { target, connections, _ in
            let reloads = ReloadScheduler(
                activator: AdminRPCActivator(connection: connections[1], token: "t"), versions: ["A", "B"],
                intervalNanos: 300_000_000)
            return await LoadSession.run(
                target: target, connections: [connections[0]], pool: try RequestPool(scenario: .emptyEcho),
                scenarioName: "empty",
                configuration: LoadConfiguration(
                    mode: .open(rate: 200, arrivals: .constant), durationNanos: 1_000_000_000),
                reloads: reloads)
        }

        // rankd without the publishing issue answers UNIMPLEMENTED; the run carries on.
        let statuses = report.reloads.map(\.status)
        #expect(statuses == ["UNIMPLEMENTED"] || statuses.allSatisfy { $0 != "UNIMPLEMENTED" }, "\(statuses)")
        #expect(!report.reloads.isEmpty)
        #expect(report.latency.errors.isEmpty)
        #expect(report.latency.count == 200)
    }
}

/// A rankd child process listening on an ephemeral loopback port.
final class RankdProcess: @unchecked Sendable {
    static let binary: String? = {
        if let path = ProcessInfo.processInfo.environment["RANKD_BIN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../..").standardizedFileURL.path
        let candidates = [
            "\(root)/.build-loadtest-root/release/rankd", "\(root)/.build/release/rankd", "\(root)/.build/debug/rankd",
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    let process: Process
    let address: String

    private init(process: Process, address: String) {
        self.process = process
        self.address = address
    }

    /// Starts rankd on `127.0.0.1:0` and waits (at most 10 s) for its `listening` log line.
    static func start() throws -> RankdProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary!)
        process.arguments = ["--listen", "127.0.0.1:0", "--enable-test-services"]
        let output = Pipe()
        process.standardError = output
        process.standardOutput = output
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        var seen = ""
        let handle = output.fileHandleForReading
        while Date() < deadline {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
            if let range = seen.range(of: #"address=\"?127\.0\.0\.1:[0-9]+"#, options: .regularExpression) {
                let address = seen[range].replacingOccurrences(of: "address=", with: "")
                    .replacingOccurrences(of: "\"", with: "")
                // Keep draining the pipe so rankd never blocks writing its log.
                handle.readabilityHandler = { _ = $0.availableData }
                return RankdProcess(process: process, address: address)
            }
        }
        process.terminate()
        throw LoadTestError("rankd did not report its address within 10 s; output: \(seen)")
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}

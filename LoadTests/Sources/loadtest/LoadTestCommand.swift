import ArgumentParser
import Foundation
import GRPCClient
import LoadHarness
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// `loadtest`: drives rankd over real gRPC and reports latency honestly (see docs/LOADTEST.md).
@main
struct LoadTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Load generator for rankd: open loop (coordinated-omission corrected) or closed loop.",
        discussion: """
            Open loop (--rate) sends on a fixed schedule and measures each call from its intended send \
            time, so a stalled server shows up in the tail. Closed loop (--concurrency) keeps C calls in \
            flight, like h2load or wrk. Targets must be loopback unless --allow-remote.
            """)

    @Option(help: "Server address host:port (loopback only unless --allow-remote).")
    var target: String

    @Option(help: "Open loop: requests per second.")
    var rate: Double?

    @Option(help: "Closed loop: number of workers, each keeping one call in flight.")
    var concurrency: Int?

    @Option(help: "Measured duration (30s, 500ms, 2m).")
    var duration = "30s"

    @Option(help: "Warm-up before measuring; its calls are not recorded.")
    var warmup = "2s"

    @Option(help: "HTTP/2 connections; calls are spread round-robin.")
    var connections = 4

    @Option(help: "Scenario file (JSON); default: one empty Echo request.")
    var scenario: String?

    @Option(help: "Write the JSON report here.")
    var json: String?

    @Option(help: "Write the SVG chart here.")
    var svg: String?

    @Option(help: "Stop after this many requests (warm-up included).")
    var maxRequests: Int?

    @Option(help: "Open-loop arrivals: constant or poisson.")
    var arrivals = "constant"

    @Flag(help: "Allow a non-loopback target.")
    var allowRemote = false

    @Option(help: "Per-call deadline (sent as grpc-timeout).")
    var timeout = "10s"

    @Option(help: "Open loop: calls due while this many are outstanding are dropped and counted.")
    var maxInFlight = 20_000

    @Option(help: "Client event-loop threads.")
    var threads = 1

    @Option(help: "Seed for Poisson arrivals.")
    var seed: UInt64 = 1

    @Option(help: "Reload scenario: activate the next of --snapshots every S seconds.")
    var reloadEvery: String?

    @Option(help: "Reload scenario: snapshot versions to alternate, e.g. A,B.")
    var snapshots: String?

    @Option(help: "Admin token file for the reload scenario (default: $RANKD_ADMIN_TOKEN).")
    var adminTokenFile: String?

    @Flag(help: "Ramp the open-loop rate to find the highest rate meeting --p99.")
    var findCapacity = false

    @Option(help: "--find-capacity: p99 target (10ms, 500us).")
    var p99 = "10ms"

    @Option(help: "--find-capacity: first rate.")
    var startRate: Double = 1000

    @Option(help: "--find-capacity: highest rate tried.")
    var maxRate: Double = 1_000_000

    @Option(help: "--find-capacity: measured duration of each step.")
    var stepDuration = "5s"

    @Flag(help: "No progress line.")
    var quiet = false

    @Flag(help: "Connect with TLS (implied by --ca, --cert and --key).")
    var tls = false

    @Option(help: "TLS: CA certificates (PEM) to verify the server with (default: the system's).")
    var ca: String?

    @Option(help: "Mutual TLS: the client certificate (PEM), with --key.")
    var cert: String?

    @Option(help: "Mutual TLS: the client certificate's private key (PEM).")
    var key: String?

    @Option(help: "TLS: the name the server's certificate must carry when it is not the target host.")
    var serverName: String?

    func validate() throws {
        guard (rate != nil) != (concurrency != nil) || (findCapacity && rate == nil && concurrency == nil) else {
            throw ValidationError(
                findCapacity
                    ? "--find-capacity chooses the rates itself: drop --rate/--concurrency"
                    : "give exactly one of --rate R (open loop) or --concurrency C (closed loop)")
        }
        if let rate, !(rate > 0 && rate <= 10_000_000) { throw ValidationError("--rate must be in (0, 10000000]") }
        if let concurrency, !(1...100_000).contains(concurrency) {
            throw ValidationError("--concurrency must be 1...100000")
        }
        guard (1...1024).contains(connections) else { throw ValidationError("--connections must be 1...1024") }
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be 1...64") }
        guard maxInFlight > 0 else { throw ValidationError("--max-in-flight must be positive") }
        if let maxRequests, maxRequests <= 0 { throw ValidationError("--max-requests must be positive") }
        guard ArrivalProcess(rawValue: arrivals) != nil else {
            throw ValidationError("--arrivals must be constant or poisson")
        }
        if (reloadEvery == nil) != (snapshots == nil) {
            throw ValidationError("--reload-every and --snapshots go together")
        }
        if reloadEvery != nil && concurrency == nil && rate == nil {
            throw ValidationError("the reload scenario needs --rate (or --concurrency)")
        }
    }

    func run() async throws {
        let target = try TargetAddress(parsing: self.target)
        guard target.isLoopback || allowRemote else {
            throw LoadTestError("--target \(target) is not loopback; pass --allow-remote to load another machine")
        }
        let scenario = try scenario.map { path throws(ScenarioError) in try Scenario.load(path: path) } ?? .emptyEcho
        let pool = try RequestPool(scenario: scenario)
        let durationNanos = try DurationText.nanoseconds(duration, option: "--duration")
        guard durationNanos > 0, durationNanos <= 3_600_000_000_000 else {
            throw LoadTestError("--duration must be more than 0 and at most 1h")
        }
        let base = LoadConfiguration(
            mode: .closed(concurrency: 1), durationNanos: durationNanos,
            warmupNanos: try DurationText.nanoseconds(warmup, option: "--warmup"),
            maxRequests: maxRequests ?? .max, timeoutNanos: try DurationText.nanoseconds(timeout, option: "--timeout"),
            maxInFlight: maxInFlight, seed: seed)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        do {
            try await run(target: target, scenario: scenario, pool: pool, base: base, group: group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    private func run(
        target: TargetAddress, scenario: Scenario, pool: RequestPool, base: LoadConfiguration,
        group: MultiThreadedEventLoopGroup
    ) async throws {
        let credentials = try tlsCredentials()
        let connections = try await LoadSession.connect(to: target, count: connections, group: group, tls: credentials)
        var report: RunReport
        if findCapacity {
            report = try await searchCapacity(
                target: target, connections: connections, pool: pool, scenario: scenario, base: base)
        } else {
            var configuration = base
            configuration.mode =
                rate.map { .open(rate: $0, arrivals: arrivalProcess) } ?? .closed(concurrency: concurrency!)
            let reloads = try await makeReloads(target: target, group: group, tls: credentials)
            report = await LoadSession.run(
                target: target, connections: connections, pool: pool, scenarioName: scenario.name,
                configuration: configuration, reloads: reloads, progress: quiet ? nil : Progress.printer())
            Progress.finish(quiet: quiet)
        }
        for connection in connections { await connection.close() }
        print(SummaryTable.render(report), terminator: "")
        try write(report)
    }

    private func searchCapacity(
        target: TargetAddress, connections: [GRPCClientConnection], pool: RequestPool, scenario: Scenario,
        base: LoadConfiguration
    ) async throws -> RunReport {
        let search = CapacitySearch(
            p99TargetMicros: try DurationText.nanoseconds(p99, option: "--p99") / 1000, startRate: startRate,
            maxRate: maxRate)
        var step = base
        step.durationNanos = try DurationText.nanoseconds(stepDuration, option: "--step-duration")
        step.warmupNanos = min(base.warmupNanos, 1_000_000_000)
        var last: RunReport?
        let stepConfiguration = step
        let arrivals = arrivalProcess
        let (capacity, steps) = await search.run(
            step: { rate in
                var configuration = stepConfiguration
                configuration.mode = .open(rate: rate, arrivals: arrivals)
                let report = await LoadSession.run(
                    target: target, connections: connections, pool: pool, scenarioName: scenario.name,
                    configuration: configuration)
                last = report
                return report
            },
            onStep: { step in
                print(
                    "step \(Int(step.targetRate)) req/s: achieved \(Int(step.achievedRate)) req/s, "
                        + "p99 \(SummaryTable.micros(step.p99Micros)), errors \(step.errors) → \(step.passed ? "ok" : "over")"
                )
            })
        print("capacity at p99 ≤ \(p99): \(Int(capacity)) req/s" + (capacity == 0 ? " (no step met the target)" : ""))
        if capacity > 0, let missed = steps.first(where: { !$0.passed && $0.targetRate < capacity }) {
            print(
                "note: \(Int(missed.targetRate)) req/s missed the target (p99 \(SummaryTable.micros(missed.p99Micros))) "
                    + "although a higher rate met it: at low rates every call pays for waking idle threads and "
                    + "cold caches, and a short step has few samples")
        }
        var report = last!
        report.capacitySteps = steps
        return report
    }

    private var arrivalProcess: ArrivalProcess { ArrivalProcess(rawValue: arrivals) ?? .constant }

    /// `--tls --ca --cert --key --server-name` as credentials, or `nil` for cleartext.
    private func tlsCredentials() throws -> ClientTLSCredentials? {
        do throws(TLSFileError) {
            let options = ClientTLSOptions(
                trustRoots: ca, certificateChain: cert, privateKey: key, serverName: serverName)
            return try ClientTLSCredentials.forFlags(tls: tls, options)
        } catch {
            throw LoadTestError(error.description)
        }
    }

    private func makeReloads(
        target: TargetAddress, group: any EventLoopGroup, tls: ClientTLSCredentials?
    ) async throws -> ReloadScheduler? {
        guard let reloadEvery, let snapshots else { return nil }
        let versions = snapshots.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
            !$0.isEmpty
        }
        guard !versions.isEmpty else { throw LoadTestError("--snapshots: give at least one version, e.g. A,B") }
        let interval = try DurationText.nanoseconds(reloadEvery, option: "--reload-every")
        guard interval >= 100_000_000 else { throw LoadTestError("--reload-every must be at least 100ms") }
        var token = ProcessInfo.processInfo.environment["RANKD_ADMIN_TOKEN"]
        if let adminTokenFile {
            do {
                token = try String(contentsOfFile: adminTokenFile, encoding: .utf8).trimmingCharacters(
                    in: .whitespacesAndNewlines)
            } catch {
                throw LoadTestError("--admin-token-file \(adminTokenFile): \(error.localizedDescription)")
            }
        }
        // Its own connection, so admin calls never queue behind the load's streams.
        let admin = try await LoadSession.connect(to: target, count: 1, group: group, tls: tls)[0]
        return ReloadScheduler(
            activator: AdminRPCActivator(connection: admin, token: token), versions: versions, intervalNanos: interval)
    }

    private func write(_ report: RunReport) throws {
        if let json {
            do {
                try report.json().write(to: URL(fileURLWithPath: json))
            } catch {
                throw LoadTestError("--json \(json): \(error.localizedDescription)")
            }
        }
        if let svg {
            do {
                try SVGChart.render(report).write(toFile: svg, atomically: true, encoding: .utf8)
            } catch {
                throw LoadTestError("--svg \(svg): \(error.localizedDescription)")
            }
        }
        for reload in report.reloads where reload.status == "UNIMPLEMENTED" {
            FileHandle.standardError.write(Data("loadtest: \(reload.message)\n".utf8))
        }
    }
}

import ArgumentParser
import Foundation
import GRPCServer
import Logging
import NIOCore
import NIOPosix
import RankingEngine
import RankingService

/// `rankd`: the ranking server.
@main
struct Rankd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rankd",
        abstract: "Serve personalised rankings over gRPC.",
        discussion: """
            Flags override values from --config. Logs go to stderr, one logfmt line per event.
            SIGTERM or SIGINT starts a graceful shutdown: stop accepting, GOAWAY, let in-flight calls
            finish (up to --drain-timeout), exit 0.
            """)

    @Option(help: "Address to listen on, host:port ([::1]:port for IPv6). Default 127.0.0.1:50051.")
    var listen: String?

    @Option(help: "JSON config file (see docs/OPERATIONS.md).")
    var config: String?

    @Option(help: "Serve this snapshot directory (built by `rankctl build` or `rankctl synth`).")
    var snapshot: String?

    @Option(help: "Event loop threads (default: one per core).")
    var threads: Int?

    @Option(help: "Largest request message in bytes (default 4194304).")
    var maxReceiveMessageSize: Int?

    @Option(help: "HTTP/2 concurrent streams per connection (default 256).")
    var maxConcurrentStreams: Int?

    @Option(help: "Connections accepted at once (default 10000).")
    var maxConnections: Int?

    @Option(help: "Seconds a connection may sit with no call before it is closed (default 300).")
    var idleTimeout: Int?

    @Option(help: "Seconds a graceful shutdown waits for in-flight calls (default 10).")
    var drainTimeout: Int?

    @Option(help: "trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?

    @Flag(help: "Also serve rankd.testing.v1.Echo (for protocol tests; never in production).")
    var enableTestServices = false

    func run() async throws {
        let file = try config.map(ConfigFile.load) ?? ConfigFile()
        let levelName = logLevel ?? file.logLevel ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else {
            throw ValidationError(
                "--log-level '\(levelName)': expected one of trace, debug, info, notice, warning, error, critical")
        }
        LoggingSystem.bootstrap { LogfmtLogHandler(label: $0, level: level) }
        let logger = Logger(label: "rankd")

        let address = try ListenAddress(parsing: listen ?? file.listen ?? "127.0.0.1:50051")
        var serverConfiguration = GRPCServerConfiguration()
        try apply(file, to: &serverConfiguration)
        let threadCount = threads ?? file.threads ?? System.coreCount
        guard threadCount >= 1 else { throw ValidationError("--threads must be at least 1") }

        let health = HealthStatus(["": .notServing, RankerService.serviceName: .notServing])
        let registry = SnapshotRegistry()
        let engine = RankingEngine(registry: registry)
        var router = GRPCRouter()
        HealthService.register(in: &router, status: health)
        RankerService.register(in: &router, engine: engine, logger: logger)
        if enableTestServices || file.enableTestServices == true {
            EchoService.register(in: &router)
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threadCount)
        let server: GRPCServer
        do {
            server = try await GRPCServer.start(
                host: address.host, port: address.port, router: router, configuration: serverConfiguration,
                group: group, logger: logger)
        } catch {
            try? await group.shutdownGracefully()
            throw StartupError("cannot listen on \(address): \(Self.describe(error))")
        }
        let bound = server.localAddress?.port.map { "\(address.host):\($0)" } ?? address.description
        logger.info(
            "listening",
            metadata: ["address": "\(bound)", "threads": "\(threadCount)", "methods": "\(router.paths.count)"])

        // Listen first (health says NOT_SERVING), then load: probes see the server come up.
        if let directory = snapshot ?? file.snapshot {
            let started = ContinuousClock.now
            do {
                let serving = try ServingSnapshot.load(directory: directory)
                registry.activate(serving)
                logger.info(
                    "snapshot active",
                    metadata: [
                        "version": "\(serving.version)", "items": "\(serving.snapshot.itemIds.count)",
                        "users": "\(serving.snapshot.userIds.count)", "dimension": "\(serving.snapshot.dimension)",
                        "graph": "\(serving.index != nil)", "load": "\(ContinuousClock.now - started)",
                    ])
                health.set(.serving)
                health.set(.serving, for: RankerService.serviceName)
            } catch {
                try? await server.close()
                try? await group.shutdownGracefully()
                throw StartupError("cannot serve snapshot \(directory): \(error)")
            }
        } else {
            logger.warning("no --snapshot given: Rank answers UNAVAILABLE until one is active")
            health.set(.serving)
        }

        await waitForTerminationSignal(logger: logger)
        health.set(.notServing)
        try await server.shutdownGracefully()
        try await group.shutdownGracefully()
        logger.info("stopped")
    }

    private func apply(_ file: ConfigFile, to configuration: inout GRPCServerConfiguration) throws {
        func positive(_ value: Int?, _ name: String) throws -> Int? {
            guard let value else { return nil }
            guard value > 0 else { throw ValidationError("\(name) must be positive, got \(value)") }
            return value
        }
        if let value = try positive(maxReceiveMessageSize ?? file.maxReceiveMessageSize, "--max-receive-message-size") {
            configuration.maxReceiveMessageSize = value
        }
        if let value = try positive(maxConcurrentStreams ?? file.maxConcurrentStreams, "--max-concurrent-streams") {
            configuration.maxConcurrentStreams = value
        }
        if let value = try positive(file.maxHeaderListSize, "maxHeaderListSize") {
            configuration.maxHeaderListSize = value
        }
        if let value = try positive(maxConnections ?? file.maxConnections, "--max-connections") {
            configuration.maxConnections = value
        }
        if let value = try positive(idleTimeout ?? file.idleTimeoutSeconds, "--idle-timeout") {
            configuration.idleTimeout = .seconds(Int64(value))
        }
        if let value = try positive(drainTimeout ?? file.drainTimeoutSeconds, "--drain-timeout") {
            configuration.drainTimeout = .seconds(Int64(value))
        }
        if let value = try positive(file.streamResetBurst, "streamResetBurst") {
            configuration.streamResetBurst = value
        }
        if let value = try positive(file.streamResetRefillPerSecond, "streamResetRefillPerSecond") {
            configuration.streamResetRefillPerSecond = value
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return error.description }
        return "\(error)"
    }
}

/// A startup failure: printed as one line, exit code 1.
struct StartupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Suspends until SIGTERM or SIGINT arrives.
private func waitForTerminationSignal(logger: Logger) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let queue = DispatchQueue(label: "rankd.signals")
        let once = SignalOnce(continuation)
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: queue)
            source.setEventHandler {
                logger.info("signal received, shutting down", metadata: ["signal": "\(signalNumber)"])
                once.resume()
            }
            source.resume()
            SignalOnce.keepAlive.append(source)
        }
    }
}

/// Resumes a continuation at most once, from the signal queue.
private final class SignalOnce: @unchecked Sendable {
    // Only touched on the serial signal queue (and once, before any signal, on setup).
    nonisolated(unsafe) static var keepAlive: [any DispatchSourceSignal] = []
    private var continuation: CheckedContinuation<Void, Never>?
    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = continuation }
    func resume() {
        continuation?.resume()
        continuation = nil
    }
}

import ArgumentParser
import CommandSupport
import Foundation
import GRPCServer
import LiveState
import Logging
import NIOCore
import NIOPosix
import RankingEngine
import RankingService
import SnapshotLifecycle
import UserEvents
import VectorIndex

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

    @Option(
        help: ArgumentHelp(
            "Snapshot root: serve its persisted active version (else its newest complete one) and accept publishes into it.",
            valueName: "dir"))
    var snapshotRoot: String?

    @Option(help: "File holding the bearer token for the admin RPCs (or set RANKD_ADMIN_TOKEN).")
    var adminTokenFile: String?

    @Option(help: "File holding a bearer token that Rank calls must carry (or RANKD_RANK_TOKEN; default: none needed).")
    var rankTokenFile: String?

    @Option(help: "Snapshot versions kept in the root besides the active one and the rollback target (default 3).")
    var retain: Int?

    @Option(help: "Largest snapshot a publish may upload, in bytes (default 68719476736).")
    var maxPublishBytes: Int?

    @Flag(help: "Allow activating a snapshot whose embedding dimension differs from the active one.")
    var allowDimensionChange = false

    @Flag(help: "Directory mode: activate every new complete version that appears in the snapshot root.")
    var watchRoot = false

    @Option(help: "Directory mode: seconds between scans of the snapshot root (default 2).")
    var watchInterval: Double?

    @Option(
        help:
            "Memory for recorded user events (RecordEvents: rotation, caps, session history), MiB; 0 turns them off (default 256). In memory only: empty at every start."
    )
    var eventBudgetMib: Int?

    @Option(
        help:
            "Scheduling of the thread that records events: idle (default; only cores Rank calls leave free), low (nice 10) or normal."
    )
    var eventIngestPriority: String?

    @Flag(
        help:
            "Walk the item graph over the stored vectors even when the snapshot has an int8 walk copy (item_walk.i8), which is used by default."
    )
    var noInt8Walk = false

    @Option(help: "Event loop threads (default: one per core this process may run on).")
    var threads: Int?

    @Option(help: "Largest request message in bytes (default 4194304).")
    var maxReceiveMessageSize: Int?

    @Option(help: "HTTP/2 concurrent streams per connection (default 256).")
    var maxConcurrentStreams: Int?

    @Option(help: "Connections accepted at once (default 10000).")
    var maxConnections: Int?

    @Option(help: "Connections one client address (IPv4, IPv6 /64) may hold open; 0: no limit (default 1000).")
    var maxConnectionsPerAddress: Int?

    @Option(help: "New connections per second one client address may open, after a burst; 0: no limit (default 50).")
    var connectionRatePerAddress: Int?

    @Option(help: "New connections one client address may open at once (default 100).")
    var connectionBurstPerAddress: Int?

    @Option(help: "Seconds a connection may sit with no call before it is closed (default 300).")
    var idleTimeout: Int?

    @Option(help: "Seconds for a new connection's preface and SETTINGS, and for a request's headers (default 10).")
    var handshakeTimeout: Int?

    @Option(help: "Seconds a connection's calls may make no progress: unread responses, missing bytes (default 30).")
    var stallTimeout: Int?

    @Option(help: "Seconds a graceful shutdown waits for in-flight calls (default 10).")
    var drainTimeout: Int?

    @Option(help: "trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?

    @Flag(help: "Also serve rankd.testing.v1.Echo (for protocol tests; never in production).")
    var enableTestServices = false

    @OptionGroup(title: "Operations")
    var observabilityOptions: ObservabilityOptions

    @OptionGroup(title: "TLS")
    var tls: TLSOptions

    func run() async throws {
        let file = try config.map(ConfigFile.load) ?? ConfigFile()
        let levelName = logLevel ?? file.logLevel ?? "info"
        guard let level = Logger.Level(rawValue: levelName) else {
            throw ValidationError(
                "--log-level '\(levelName)': expected one of trace, debug, info, notice, warning, error, critical")
        }
        LoggingSystem.bootstrap { LogfmtLogHandler(label: $0, level: level) }
        let logger = Logger(label: "rankd")

        let address = try parseListenAddress(listen ?? file.listen ?? "127.0.0.1:50051")
        var serverConfiguration = GRPCServerConfiguration()
        try apply(file, to: &serverConfiguration)
        let threadCount = threads ?? file.threads ?? CPUAffinity.usableCores(limit: System.coreCount)
        guard threadCount >= 1 else { throw ValidationError("--threads must be at least 1") }
        serverConfiguration.tls = try tls.credentials(file: file)
        let adminIdentities = try tls.adminIdentities(file: file)

        // Before any snapshot is derived.
        ServingSnapshot.int8Walk = !noInt8Walk && file.int8Walk != false
        let health = HealthStatus(["": .notServing, RankerService.serviceName: .notServing])
        let registry = SnapshotRegistry<ServingSnapshot>()
        // Before anything creates its metric handles.
        let observability = try Observability(
            options: observabilityOptions, file: file, registry: registry, logger: logger)
        let events = try openEventStore(file: file, logger: logger)
        if events != nil { try setEventIngestPriority(file: file, logger: logger) }
        let engine = RankingEngine(registry: registry, events: events)
        serverConfiguration.recordsMetrics = observability.recordsMetrics
        let directory = snapshot ?? file.snapshot
        let rootDirectory = snapshotRoot ?? file.snapshotRoot
        guard directory == nil || rootDirectory == nil else {
            throw ValidationError("--snapshot and --snapshot-root are exclusive: a root serves its own versions")
        }
        guard rootDirectory != nil || !(watchRoot || file.watchRoot == true) else {
            throw ValidationError("--watch-root needs --snapshot-root")
        }
        let live = try rootDirectory.map { root in try openLiveOverlay(root: root, logger: logger) }
        if let live { observability.watch(live) }
        // DeleteUser purges the user's recorded events too (and every deletion replayed from the log).
        if let live, let events { live.addPurger(UserEventPurger(events)) }
        let store = try rootDirectory.map { root in
            try openStore(root: root, file: file, registry: registry, live: live, health: health, logger: logger)
        }
        var router = GRPCRouter()
        HealthService.register(in: &router, status: health)
        let rankToken = try readToken(
            file: rankTokenFile ?? file.rankTokenFile, environment: "RANKD_RANK_TOKEN", flag: "--rank-token-file")
        RankerService.register(
            in: &router, engine: engine, logger: logger,
            auth: rankToken.map {
                BearerTokenAuth(token: $0, scope: "Rank calls", howToConfigure: "--rank-token-file or RANKD_RANK_TOKEN")
            }, observability: observability.rank)
        EventService.register(
            in: &router, engine: engine,
            auth: rankToken.map {
                BearerTokenAuth(
                    token: $0, scope: "RecordEvents calls", howToConfigure: "--rank-token-file or RANKD_RANK_TOKEN")
            })
        if let store {
            let adminToken = try readToken(
                file: adminTokenFile ?? file.adminTokenFile, environment: "RANKD_ADMIN_TOKEN",
                flag: "--admin-token-file")
            if adminToken == nil && adminIdentities.isEmpty {
                logger.warning(
                    "no admin token (--admin-token-file or RANKD_ADMIN_TOKEN) and no --tls-admin-identity: admin RPCs are refused"
                )
            }
            SnapshotAdminService.register(
                in: &router, store: store, live: live,
                auth: BearerTokenAuth(
                    token: adminToken, scope: "admin RPCs", howToConfigure: "--admin-token-file or RANKD_ADMIN_TOKEN",
                    certificateNames: adminIdentities),
                logger: logger)
        }
        if enableTestServices || file.enableTestServices == true {
            EchoService.register(in: &router)
        }
        // Last: it lists the services registered before it.
        ReflectionService.register(in: &router)

        // Connections are open files: the limit up to the hard one, and the descriptor table sized for
        // them now rather than grown (each growth stalls the accepting loop, see OpenFileLimit).
        let descriptors = serverConfiguration.maxConnections + Self.descriptorHeadroom
        let openFileLimit = OpenFileLimit.raiseToHardLimit()
        OpenFileLimit.reserveDescriptorTable(descriptors)
        if let openFileLimit, openFileLimit < descriptors {
            logger.warning(
                "open-file limit is below max-connections: connections past it are refused by the kernel",
                metadata: [
                    "open_file_limit": "\(openFileLimit)", "max_connections": "\(serverConfiguration.maxConnections)",
                ])
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
        do {
            if let metricsAddress = try await observability.start() {
                logger.info("metrics listening", metadata: ["address": "\(metricsAddress)", "path": "/metrics"])
            }
        } catch {
            try? await server.close()
            try? await group.shutdownGracefully()
            throw error
        }
        let security = serverConfiguration.tls.map { $0.files.clientCA == nil ? "tls" : "mutual-tls" } ?? "plaintext"
        logger.info(
            "listening",
            metadata: [
                "address": "\(bound)", "threads": "\(threadCount)", "methods": "\(router.paths.count)",
                "transport": "\(security)", "kernels": "\(DistanceKernels.inUse)",
            ])
        if let credentials = serverConfiguration.tls {
            logger.info("TLS certificate loaded", metadata: TLSOptions.metadata(credentials.summary))
            tls.startReloading(credentials, file: file, logger: logger)
        }

        // Listen first (health says NOT_SERVING), then load: probes see the server come up.
        if let store {
            health.set(.serving)
            if store.activateAtStartup(log: { logger.error("\($0)") }) == nil {
                logger.warning(
                    "snapshot root has no version that can serve: Rank answers UNAVAILABLE until one is published and activated",
                    metadata: ["root": "\(store.root)"])
            }
            if watchRoot || file.watchRoot == true {
                let seconds = watchInterval ?? file.watchIntervalSeconds ?? 2
                guard seconds > 0 else { throw ValidationError("--watch-interval must be positive") }
                SnapshotWatcher(
                    store: store, interval: .milliseconds(Int64(seconds * 1000)),
                    log: { logger.error("\($0)") }
                ).start()
                logger.info("directory mode: watching the snapshot root", metadata: ["interval_s": "\(seconds)"])
            }
        } else if let directory {
            let started = ContinuousClock.now
            do {
                let serving = try ServingSnapshot.load(directory: directory)
                registry.activate(serving)
                logger.info(
                    "snapshot active",
                    metadata: [
                        "version": "\(serving.version)", "items": "\(serving.snapshot.itemIds.count)",
                        "users": "\(serving.snapshot.userIds.count)", "dimension": "\(serving.snapshot.dimension)",
                        "graph": "\(serving.index != nil)",
                        "int8_walk": "\(serving.index?.walkVectors != nil)", "load": "\(ContinuousClock.now - started)",
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
        await observability.stop()
        try await group.shutdownGracefully()
        logger.info("stopped")
    }

    /// Opens the snapshot root; every activation (startup, admin, directory mode) is logged and
    /// marks Rank SERVING. Health never leaves SERVING during a reload: the old snapshot serves
    /// until the swap.
    private func openStore(
        root: String, file: ConfigFile, registry: SnapshotRegistry<ServingSnapshot>, live: LiveOverlay?,
        health: HealthStatus, logger: Logger
    ) throws -> SnapshotStore<ServingSnapshot> {
        var options = SnapshotStoreOptions()
        if let value = retain ?? file.retain {
            guard value >= 0 else { throw ValidationError("--retain must be at least 0") }
            options.retain = value
        }
        if let value = maxPublishBytes ?? file.maxPublishBytes {
            guard value > 0 else { throw ValidationError("--max-publish-bytes must be positive") }
            options.maxPublishBytes = value
        }
        options.allowDimensionChange = allowDimensionChange || file.allowDimensionChange == true
        do {
            // Each snapshot gets its live-overlay view before its first request; after each swap the
            // log drops what the active and rollback snapshots already contain.
            let opened = StoreReference()
            let store = try SnapshotStore(
                root: root, registry: registry, options: options, beforeSwap: { serving in live.map(serving.attach) }
            ) { result, how in
                if let live, let store = opened.store {
                    store.compactLiveOverlay(live, log: { logger.error("\($0)") })
                }
                if let serving = registry.current() {
                    logger.info(
                        "snapshot active",
                        metadata: [
                            "version": "\(result.activeVersion)", "previous": "\(result.previousVersion)",
                            "by": "\(how)",
                            "items": "\(serving.snapshot.itemIds.count)", "users": "\(serving.snapshot.userIds.count)",
                            "dimension": "\(serving.snapshot.dimension)", "load_ms": "\(Int(result.loadMilliseconds))",
                            "checks": "\(result.fullyVerified ? "full" : "unchanged since verified")",
                        ])
                }
                health.set(.serving, for: RankerService.serviceName)
            }
            opened.store = store
            return store
        } catch {
            throw StartupError("cannot open snapshot root \(root): \(error.message)")
        }
    }

    /// The recorded-events store (`--event-budget-mib`, default 256; 0: none). In memory only: it starts
    /// empty on every start, which the log says.
    private func openEventStore(file: ConfigFile, logger: Logger) throws -> UserEventStore? {
        let mebibytes = eventBudgetMib ?? file.eventBudgetMiB ?? 256
        guard (0...1 << 20).contains(mebibytes) else {
            throw ValidationError("--event-budget-mib must be 0...1048576, got \(mebibytes)")
        }
        guard mebibytes > 0 else {
            logger.info("events off (--event-budget-mib 0): RecordEvents answers UNAVAILABLE")
            return nil
        }
        let store = UserEventStore(budgetBytes: mebibytes << 20)
        logger.info(
            "event state in memory, empty at start",
            metadata: [
                "budget_mib": "\(mebibytes)", "capacity_users": "\(store.capacity)",
                "bytes_per_user": "\(UserEventStore.bytesPerUser)",
            ])
        return store
    }

    /// `--event-ingest-priority` (default idle). A refusal by the system (e.g. `normal` where lowering
    /// nice values needs privileges) only costs that preference, so it is logged, not fatal.
    private func setEventIngestPriority(file: ConfigFile, logger: Logger) throws {
        let name = eventIngestPriority ?? file.eventIngestPriority ?? IngestPriority.idle.rawValue
        guard let priority = IngestPriority(rawValue: name) else {
            let choices = IngestPriority.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError("--event-ingest-priority must be one of \(choices), got \(name)")
        }
        EventService.setIngestPriority(priority) { refused in
            if let refused {
                logger.warning(
                    "event ingest priority not applied", metadata: ["priority": "\(name)", "error": "\(refused)"])
            }
        }
    }

    /// Opens the live overlay of the snapshot root (`ROOT/.live`) and replays its log; a torn tail is
    /// logged and dropped.
    private func openLiveOverlay(root: String, logger: Logger) throws -> LiveOverlay {
        do {
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            let live = try LiveOverlay(directory: root + "/.live")
            let status = live.status()
            logger.info(
                "live overlay replayed",
                metadata: [
                    "records": "\(live.recovery.records)", "items": "\(status.items)",
                    "deleted_users": "\(status.deletedUsers)", "log_bytes": "\(status.logBytes)",
                ])
            if live.recovery.droppedBytes > 0 {
                logger.warning(
                    "live overlay log had a torn tail (never acknowledged): dropped",
                    metadata: ["bytes": "\(live.recovery.droppedBytes)", "where": "\(live.recovery.dropReason)"])
            }
            return live
        } catch let error as LiveStateError {
            throw StartupError("cannot open the live overlay in \(root)/.live: \(error.message)")
        }
    }

    /// A bearer token from `file`, else from the environment (see ``BearerTokenSource``).
    private func readToken(file path: String?, environment: String, flag: String) throws -> String? {
        do throws(BearerTokenSource.ReadError) {
            return try BearerTokenSource.read(file: path, environment: environment, flag: flag)
        } catch {
            throw ValidationError(error.description)
        }
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
        func nonNegative(_ value: Int?, _ name: String) throws -> Int? {
            guard let value else { return nil }
            guard value >= 0 else { throw ValidationError("\(name) must be 0 (no limit) or more, got \(value)") }
            return value
        }
        if let value = try nonNegative(
            maxConnectionsPerAddress ?? file.maxConnectionsPerAddress, "--max-connections-per-address")
        {
            configuration.maxConnectionsPerAddress = value
        }
        if let value = try nonNegative(
            connectionRatePerAddress ?? file.connectionRatePerAddress, "--connection-rate-per-address")
        {
            configuration.connectionRatePerAddress = value
        }
        if let value = try positive(
            connectionBurstPerAddress ?? file.connectionBurstPerAddress, "--connection-burst-per-address")
        {
            configuration.connectionBurstPerAddress = value
        }
        if let value = try nonNegative(file.abusiveConnectionCost, "abusiveConnectionCost") {
            configuration.abusiveConnectionCost = value
        }
        if let value = try positive(idleTimeout ?? file.idleTimeoutSeconds, "--idle-timeout") {
            configuration.idleTimeout = .seconds(Int64(value))
        }
        if let value = try nonNegative(
            file.releaseMemoryAfterClosedConnections, "releaseMemoryAfterClosedConnections")
        {
            configuration.releaseMemoryAfterClosedConnections = value
        }
        if let value = file.idleTimeoutJitter {
            guard value >= 0, value <= 1 else {
                throw ValidationError("idleTimeoutJitter must be between 0 and 1, got \(value)")
            }
            configuration.idleTimeoutJitter = value
        }
        if let value = try positive(handshakeTimeout ?? file.handshakeTimeoutSeconds, "--handshake-timeout") {
            configuration.handshakeTimeout = .seconds(Int64(value))
        }
        if let value = try positive(stallTimeout ?? file.stallTimeoutSeconds, "--stall-timeout") {
            configuration.stallTimeout = .seconds(Int64(value))
        }
        if let value = try positive(file.controlFrameBurst, "controlFrameBurst") {
            configuration.controlFrameBurst = value
        }
        if let value = try positive(file.controlFrameRefillPerSecond, "controlFrameRefillPerSecond") {
            configuration.controlFrameRefillPerSecond = value
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
        if let value = try positive(file.tlsHandshakeTimeoutSeconds, "tlsHandshakeTimeoutSeconds") {
            configuration.tlsHandshakeTimeout = .seconds(Int64(value))
        }
    }

    /// Descriptors besides connections: listeners, snapshot and log files, the admin and metrics ports.
    private static let descriptorHeadroom = 256

    private static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return error.description }
        return "\(error)"
    }
}

/// The store, for its own activation callback (which is created before the store exists).
private final class StoreReference: @unchecked Sendable {
    private let lock = NSLock()
    private var value: SnapshotStore<ServingSnapshot>?
    var store: SnapshotStore<ServingSnapshot>? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
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

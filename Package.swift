// swift-tools-version:6.1
//
// rankd — a personalisation ranking server. Supported platform: Linux (x86-64, glibc); the code
// calls Glibc, epoll-backed NIO and Linux file-system calls directly, and no other platform is
// built or tested.
//
// Module graph, read top to bottom; every arrow points down (docs/ENGINE.md, docs/GRPC.md):
//
//   rankd, rankctl (executables) ─ config, wiring, commands
//     ├─ CommandSupport ─ what both executables read from their command line and environment
//     │                   (the bearer token file, the CPUs it may run on); no library imports it
//     └─ RankingService ─ gRPC methods: API values ⇄ engine               (service)
//          ├─ GRPCServer ─ HTTP/2 server, router, limits; knows nothing about ranking  (wire)
//          │               (CMalloc: glibc malloc_trim after connection storms, header only)
//          ├─ RankingAPI ─ protobuf-c codec for the API values (C types stop here)    (wire)
//          │    └─ RankingModel ─ RankRequest/RankResponse values and validation (no dependencies)
//          └─ RankingEngine ─ request pipeline, strategies, experiments           (engine)
//               ├─ SnapshotLifecycle ─ snapshot root, publish, activation, rollback, watcher and the
//               │    │                 registry of the active snapshot; generic over its serving form  (store)
//               │    └─ Snapshot
//               ├─ LiveState ─ durable live overlay (item updates, deleted users: WAL in the snapshot
//               │    │         root + lock-free read view per snapshot)                      (live)
//               │    └─ Snapshot, RankingModel, MappedStorage
//               ├─ UserEvents ─ per-user event state (recent impressions and interactions) in a fixed
//               │    │          memory budget, sharded, clock eviction; in memory only             (live)
//               │    └─ MappedStorage (xxHash64 only)
//               ├─ Snapshot ─ on-disk format, builder, validation
//               ├─ VectorIndex ─ kernels, HNSW, exact search, filters (CPrefetch: a prefetch hint, header only;
//               │                CKernels: AVX2 batch kernels chosen at run time by cpuid)
//               └─ Reranking ─ MMR, DPP, constraints, explanations
//                    (Snapshot, VectorIndex) └─ MappedStorage ─ mmap and bounds-checked views  (storage)
//                                            └─ SeededRandom ─ the one seedable generator (SplitMix64)
//   GRPCClient ─ nghttp2 client side (rankctl, LoadTests, tests)                            (wire)
//
//   MetricsExporter ─ swift-metrics backend (Prometheus text, lock-free histograms, GET /metrics)
//   TraceExporter ─ swift-distributed-tracing backend (W3C traceparent, OTLP/HTTP JSON export)
//     (both wired by rankd only; libraries record through the CoreMetrics and Tracing facades)
//   FuzzHarness (Fuzz/Harness) ─ the fuzz targets as plain functions over bytes: the libFuzzer
//                 entry (Fuzz/, own package) and the corpus replay tests both call them; nothing
//                 in the server imports it
//
//   GRPCServer, GRPCClient, RankingAPI
//     └─ GRPCCore ─ status, message framing, timeouts, percent-encoding, header blocks, the
//                   nghttp2 session; server and client each build on it, never on each other
//   GRPCServer, GRPCClient
//     └─ GRPCTLS ─ TLS credentials from PEM files (swift-nio-ssl): the server's reloadable
//                  context, the client's; each side puts NIOSSL in its own pipeline
//
import PackageDescription

let strictSwift: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "rankd",
    products: [
        .executable(name: "rankd", targets: ["rankd"]),
        .executable(name: "rankctl", targets: ["rankctl"]),
        .library(name: "CommandSupport", targets: ["CommandSupport"]),
        .library(name: "GRPCCore", targets: ["GRPCCore"]),
        .library(name: "GRPCServer", targets: ["GRPCServer"]),
        .library(name: "GRPCClient", targets: ["GRPCClient"]),
        .library(name: "GRPCTLS", targets: ["GRPCTLS"]),
        .library(name: "RankingAPI", targets: ["RankingAPI"]),
        .library(name: "RankingModel", targets: ["RankingModel"]),
        .library(name: "RankingEngine", targets: ["RankingEngine"]),
        .library(name: "SnapshotLifecycle", targets: ["SnapshotLifecycle"]),
        .library(name: "Snapshot", targets: ["Snapshot"]),
        .library(name: "LiveState", targets: ["LiveState"]),
        .library(name: "UserEvents", targets: ["UserEvents"]),
        .library(name: "VectorIndex", targets: ["VectorIndex"]),
        .library(name: "Reranking", targets: ["Reranking"]),
        .library(name: "MappedStorage", targets: ["MappedStorage"]),
        .library(name: "SeededRandom", targets: ["SeededRandom"]),
        .library(name: "MetricsExporter", targets: ["MetricsExporter"]),
        .library(name: "RankingService", targets: ["RankingService"]),
        .library(name: "FuzzHarness", targets: ["FuzzHarness"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // MARK: C libraries (system) and generated protobuf-c code

        .systemLibrary(
            name: "CNGHTTP2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        .systemLibrary(
            name: "CProtobufC",
            pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]
        ),
        // Header-only: `__builtin_prefetch` for the HNSW walk (no library, nothing to install).
        .systemLibrary(name: "CPrefetch"),
        // Header-only: glibc's `malloc_trim`, which Swift's Glibc module does not export.
        .systemLibrary(name: "CMalloc"),
        // C kernels compiled for AVX2 + FMA behind a run-time CPU check, so a portable build runs
        // them too (docs/INDEX.md "Kernels and CPU dispatch"). Plain C, no dependencies.
        .target(name: "CKernels"),
        // Output of `protoc-c` for Protos/ (regenerate with `make protos`; `make check-protos`
        // fails when it is stale). Committed so a build needs no protoc.
        .target(
            name: "RankingProtos",
            dependencies: ["CProtobufC"]
        ),

        // MARK: Storage, retrieval, re-ranking, snapshot (no networking below this line)

        .target(
            name: "MappedStorage",
            swiftSettings: strictSwift
        ),
        // The one seedable generator (SplitMix64): HNSW levels, synthetic data, tests and load
        // schedules all draw from it, so every build and run reproduces.
        .target(
            name: "SeededRandom",
            swiftSettings: strictSwift
        ),
        .target(
            name: "VectorIndex",
            dependencies: ["MappedStorage", "CPrefetch", "CKernels", "SeededRandom"],
            swiftSettings: strictSwift
        ),
        .target(
            name: "Reranking",
            swiftSettings: strictSwift
        ),
        .target(
            name: "Snapshot",
            dependencies: ["MappedStorage", "VectorIndex", "SeededRandom"],
            swiftSettings: strictSwift
        ),
        // Plain Swift values of the ranking API and their validation: shared by the codec
        // (RankingAPI) and the engine without pulling networking into the engine.
        .target(
            name: "RankingModel",
            swiftSettings: strictSwift
        ),
        // The snapshot root: publish, activation, retention, rollback, directory mode, and the
        // registry of the active snapshot. Generic over the serving form of a snapshot, so it sits
        // below the engine and knows nothing about ranking.
        .target(
            name: "SnapshotLifecycle",
            dependencies: [
                "RankingModel", "Snapshot", "MappedStorage",
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSwift
        ),
        // Live changes on top of a snapshot (item updates, deleted users): the write-ahead log in the
        // snapshot root and the per-snapshot view Rank reads lock-free. No networking.
        .target(
            name: "LiveState",
            dependencies: [
                "RankingModel", "Snapshot", "MappedStorage", .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSwift
        ),
        // Per-user event state (impressions, interactions) for rotation, frequency caps and session
        // history: sharded, bounded, in memory. Knows item and user ids only as 64-bit keys.
        .target(
            name: "UserEvents",
            dependencies: ["MappedStorage", .product(name: "CoreMetrics", package: "swift-metrics")],
            swiftSettings: strictSwift
        ),
        .target(
            name: "RankingEngine",
            dependencies: [
                "RankingModel", "Snapshot", "SnapshotLifecycle", "LiveState", "UserEvents", "VectorIndex", "Reranking",
                "MappedStorage",
            ],
            swiftSettings: strictSwift
        ),

        // MARK: Wire: gRPC server/client core and the API codec

        // What both sides of a gRPC call share. The server and the client each build on it and
        // never on each other; both re-export it, since their APIs speak in its `GRPCStatus`.
        .target(
            name: "GRPCCore",
            dependencies: [
                "CNGHTTP2",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        // TLS credentials for both sides (swift-nio-ssl, BoringSSL): PEM loading with errors that
        // name the file, the server's reloadable context, the client's context. No pipeline code:
        // the server and the client each put NIOSSL in front of their nghttp2 session.
        .target(
            name: "GRPCTLS",
            dependencies: [
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "GRPCServer",
            dependencies: [
                "CNGHTTP2", "CMalloc", "GRPCCore", "GRPCTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "GRPCClient",
            dependencies: [
                "CNGHTTP2", "GRPCCore", "GRPCTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "RankingAPI",
            dependencies: ["RankingModel", "RankingProtos", "CProtobufC", "GRPCCore"],
            swiftSettings: strictSwift
        ),
        .target(
            name: "RankingService",
            dependencies: [
                "GRPCServer", "RankingAPI", "RankingModel", "RankingEngine", "SnapshotLifecycle", "LiveState",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: Operations: the metrics backend (rankd wires it; libraries record through CoreMetrics)

        // A swift-metrics backend: swift-prometheus counters and gauges, lock-free histograms for
        // timers (swift-prometheus's take a lock per sample), and the `GET /metrics` listener.
        .target(
            name: "MetricsExporter",
            dependencies: [
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),

        // A swift-distributed-tracing backend: W3C traceparent propagation and OTLP/HTTP (JSON)
        // export from a background thread. Written here rather than taken from swift-otel, whose
        // dependency tree adds about 7 minutes to every clean (CI) build on this machine.
        .target(
            name: "TraceExporter",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: Executables

        // Code the two executables share that knows about command lines and the environment
        // (flag names, variables): kept out of the libraries, which take plain values.
        .target(
            name: "CommandSupport",
            swiftSettings: strictSwift
        ),

        .executableTarget(
            name: "rankd",
            dependencies: [
                "CommandSupport", "GRPCServer", "RankingService", "RankingEngine", "SnapshotLifecycle", "LiveState",
                "UserEvents", "VectorIndex", "MetricsExporter", "TraceExporter",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "rankctl",
            dependencies: [
                "CommandSupport", "GRPCClient", "GRPCCore", "RankingAPI", "RankingEngine", "SnapshotLifecycle",
                "Snapshot",
                "VectorIndex", "MappedStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: Fuzzing

        // The fuzz targets (docs/SECURITY.md): run under libFuzzer by the Fuzz/ package (`make fuzz`)
        // and replayed over the committed corpora by FuzzHarnessTests.
        .target(
            name: "FuzzHarness",
            dependencies: [
                "GRPCCore", "GRPCServer", "RankingAPI", "RankingModel", "RankingEngine", "RankingService",
                "Snapshot", "SnapshotLifecycle", "MappedStorage", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Fuzz/Harness",
            swiftSettings: strictSwift
        ),

        // MARK: Tests

        .target(
            name: "TestSupport",
            dependencies: ["Snapshot", "RankingModel", "SeededRandom"],
            path: "Tests/TestSupport",
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "GRPCCoreTests",
            dependencies: [
                "GRPCCore", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "GRPCServerTests",
            dependencies: [
                "GRPCCore", "GRPCServer", "GRPCClient", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "RankingEngineTests",
            dependencies: [
                "RankingEngine", "RankingModel", "Snapshot", "SnapshotLifecycle", "LiveState", "UserEvents",
                "TestSupport",
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "RankingServiceTests",
            dependencies: [
                "RankingService", "RankingEngine", "RankingAPI", "RankingModel", "SnapshotLifecycle", "GRPCServer",
                "UserEvents",
                "GRPCClient", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SnapshotLifecycleTests",
            dependencies: ["SnapshotLifecycle", "RankingModel", "Snapshot", "TestSupport"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "RankingAPITests",
            dependencies: [
                "RankingAPI", "RankingModel", "GRPCCore", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "MetricsExporterTests",
            dependencies: [
                "MetricsExporter",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "TraceExporterTests",
            dependencies: [
                "TraceExporter",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Instrumentation", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "RankingModelTests",
            dependencies: ["RankingModel", "TestSupport"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "GRPCClientTests",
            dependencies: ["GRPCClient", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SeededRandomTests",
            dependencies: ["SeededRandom"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "CommandSupportTests",
            dependencies: ["CommandSupport"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "MappedStorageTests",
            dependencies: ["MappedStorage", "TestSupport"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "VectorIndexTests",
            dependencies: ["VectorIndex", "CKernels", "MappedStorage", "TestSupport"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SnapshotTests",
            dependencies: ["Snapshot", "VectorIndex", "MappedStorage", "TestSupport"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "FuzzHarnessTests",
            dependencies: ["FuzzHarness"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "LiveStateTests",
            dependencies: ["LiveState", "RankingModel", "Snapshot", "MappedStorage", "TestSupport"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "UserEventsTests",
            dependencies: ["UserEvents"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "RerankingTests",
            dependencies: ["Reranking", "TestSupport"],
            swiftSettings: strictSwift
        ),
    ]
)

// swift-tools-version:6.1
//
// LoadTests — load generation and benchmarks for rankd, kept out of the root package so its
// dependencies (HdrHistogram, benchmark) never reach the server build.
//
//   loadtest (executable) ─ command line, progress line, wiring
//     └─ LoadHarness ─ arrival schedules, scenarios and request pools, recording, reports
//          └─ GRPCClient, RankingAPI (root package)
//
// Other benchmark targets may be added below under their own MARK.

import PackageDescription

let strictSwift: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "LoadTests",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "rankd", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(
            url: "https://github.com/ordo-one/package-benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // MARK: Load harness (issue 8)

        .target(
            name: "LoadHarness",
            dependencies: [
                .product(name: "CommandSupport", package: "rankd"),
                .product(name: "SeededRandom", package: "rankd"),
                .product(name: "GRPCClient", package: "rankd"),
                .product(name: "GRPCCore", package: "rankd"),
                .product(name: "RankingAPI", package: "rankd"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "loadtest",
            dependencies: [
                "LoadHarness",
                .product(name: "GRPCClient", package: "rankd"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "LoadHarnessTests",
            dependencies: [
                "LoadHarness",
                .product(name: "SeededRandom", package: "rankd"),
                .product(name: "GRPCClient", package: "rankd"),
                .product(name: "GRPCCore", package: "rankd"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: Rank pipeline benchmark (issue 6)

        // Server-side latency by stage (decode, resolve, retrieve, rerank, describe, encode), in process.
        .executableTarget(
            name: "rank-bench",
            dependencies: [
                .product(name: "RankingAPI", package: "rankd"),
                .product(name: "RankingEngine", package: "rankd"),
                .product(name: "Snapshot", package: "rankd"),
                .product(name: "SnapshotLifecycle", package: "rankd"),
                .product(name: "LiveState", package: "rankd"),
                .product(name: "UserEvents", package: "rankd"),
                .product(name: "SeededRandom", package: "rankd"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/rank-bench",
            swiftSettings: strictSwift
        ),

        // MARK: Events (issue 17)

        // The event store in process (memory per tracked user, eviction at the budget, read cost) and
        // RecordEvents ingest over gRPC client streams against a running rankd.
        .executableTarget(
            name: "event-bench",
            dependencies: [
                .product(name: "UserEvents", package: "rankd"),
                .product(name: "GRPCClient", package: "rankd"),
                .product(name: "RankingAPI", package: "rankd"),
                .product(name: "SeededRandom", package: "rankd"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: Metrics cost (issue 18)

        // Rank through its registered handler with metrics off and on (time and allocations per
        // call, paired passes), and /metrics render time at 10k series.
        .executableTarget(
            name: "metrics-bench",
            dependencies: [
                .product(name: "MetricsExporter", package: "rankd"),
                .product(name: "RankingService", package: "rankd"),
                .product(name: "SnapshotLifecycle", package: "rankd"),
                .product(name: "GRPCServer", package: "rankd"),
                .product(name: "RankingEngine", package: "rankd"),
                .product(name: "RankingAPI", package: "rankd"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: Snapshot benchmarks (issue 3)

        .executableTarget(
            name: "snapshot-bench",
            dependencies: [.product(name: "Snapshot", package: "rankd")],
            swiftSettings: strictSwift
        ),

        // MARK: Re-ranking benchmarks (issue 5)

        // Synthetic candidate sets shared by the benchmark and the quality sweep.
        .target(
            name: "RerankingWorkload",
            dependencies: [
                .product(name: "Reranking", package: "rankd"), .product(name: "SeededRandom", package: "rankd"),
            ],
            swiftSettings: strictSwift
        ),
        // µs and allocations per call: `swift package benchmark --target RerankingBenchmarks`.
        .executableTarget(
            name: "RerankingBenchmarks",
            dependencies: [
                "RerankingWorkload",
                .product(name: "Reranking", package: "rankd"),
                .product(name: "Benchmark", package: "package-benchmark"),
            ],
            path: "Benchmarks/RerankingBenchmarks",
            swiftSettings: strictSwift,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
        // NDCG@20 vs diversity and category coverage over a λ / θ sweep, as a markdown table.
        .executableTarget(
            name: "reranking-quality",
            dependencies: ["RerankingWorkload", .product(name: "Reranking", package: "rankd")],
            swiftSettings: strictSwift
        ),
    ]
)

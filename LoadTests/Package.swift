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
    ],
    targets: [
        // MARK: Load harness (issue 8)

        .target(
            name: "LoadHarness",
            dependencies: [
                .product(name: "GRPCClient", package: "rankd"),
                .product(name: "GRPCServer", package: "rankd"),
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
                .product(name: "GRPCClient", package: "rankd"),
                .product(name: "GRPCServer", package: "rankd"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
    ]
)

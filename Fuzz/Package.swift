// swift-tools-version:6.1
//
// Fuzz — the libFuzzer entry point for rankd's fuzz targets, kept out of the root package so the
// fuzzer's instrumentation (`-sanitize=fuzzer,address`) never reaches the server build.
//
//   rankd-fuzz (executable, libFuzzer's main) ─ picks the target named by RANKD_FUZZ_TARGET
//     └─ FuzzHarness (root package, Fuzz/Harness) ─ the targets as plain functions over bytes
//
// Build and run through the root Makefile: `make fuzz FUZZ_SECONDS=N`, `make fuzz-smoke`.

import PackageDescription

let package = Package(
    name: "Fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "rankd", path: "..")
    ],
    targets: [
        .executableTarget(
            name: "rankd-fuzz",
            dependencies: [.product(name: "FuzzHarness", package: "rankd")],
            swiftSettings: [.enableUpcomingFeature("ExistentialAny")]
        )
    ]
)

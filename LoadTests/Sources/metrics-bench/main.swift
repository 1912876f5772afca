// metrics-bench: what metrics cost (issue 18).
//
//   metrics-bench rank --snapshot DIR [--requests 20000] [--passes 10] [--k 20] [--side off|on]
//       Rank through the handler RankerService registers, metrics off and on, in alternating
//       passes over the same requests on one thread: ns per call and, with scripts/alloc-count.c
//       preloaded, heap allocations per call of each. `--side` runs one side once (for
//       `valgrind --tool=callgrind`, whose instruction counts do not depend on other load).
//   metrics-bench scrape [--series 10000] [--renders 50] [--serve SECONDS]
//       Renders a /metrics exposition of that many series (200 timers x 28 lines, the rest
//       counters); with --serve, also serves it on 127.0.0.1 for SECONDS (prints the port) so
//       curl can time whole scrapes.

import CoreMetrics
import Foundation
import GRPCServer
import Logging
import MetricsExporter
import NIOCore
import NIOPosix
import RankingAPI
import RankingEngine
import RankingService
import SnapshotLifecycle

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("metrics-bench: \(message)\n".utf8))
    exit(2)
}

func option(_ name: String, _ arguments: [String]) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

func nanoseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9
}

typealias AllocationCounter = @convention(c) () -> UInt64
let allocations = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "rankd_alloc_count").map {
    unsafeBitCast($0, to: AllocationCounter.self)
}

func rankPasses(_ arguments: [String]) {
    guard let directory = option("--snapshot", arguments) else { fail("rank needs --snapshot DIR") }
    let requests = option("--requests", arguments).flatMap(Int.init) ?? 20_000
    let passes = option("--passes", arguments).flatMap(Int.init) ?? 10
    let k = option("--k", arguments).flatMap(Int.init) ?? 20
    let backend = PrometheusBackend()
    MetricsSystem.bootstrap(backend)
    let serving: ServingSnapshot
    do {
        serving = try ServingSnapshot.load(directory: directory, verifyChecksums: false)
    } catch {
        fail("\(error)")
    }
    let engine = RankingEngine(registry: SnapshotRegistry(serving))
    let logger = Logger(label: "bench")
    func handler(metrics: Bool) -> @Sendable (ServerCallContext, ByteBuffer) -> UnaryResult {
        var router = GRPCRouter()
        RankerService.register(
            in: &router, engine: engine, logger: logger, observability: RankObservability(recordsMetrics: metrics))
        guard case .unary(let body) = router.handler(service: RankerService.serviceName, method: "Rank") else {
            fail("Rank is not a unary handler")
        }
        return body
    }
    let only = option("--side", arguments)
    let sides = [("off", handler(metrics: false)), ("on", handler(metrics: true))].filter {
        only == nil || $0.0 == only
    }
    guard !sides.isEmpty else { fail("--side is off or on") }
    let users = serving.snapshot.userIds
    let bodies = (0..<requests).map { index in
        var request = RankRequest()
        request.userID = users.id(at: (index &* 7919) % users.count) ?? ""
        request.k = k
        return RankCodec.encodeRequest(request)
    }
    let context = ServerCallContext(
        path: "/ranking.v1.Ranker/Rank", deadline: nil, metadata: [],
        eventLoop: MultiThreadedEventLoopGroup.singleton.next())
    for (_, body) in sides {  // warm up scratch and caches on both
        for request in bodies.prefix(1000) { _ = body(context, request) }
    }
    if only != nil {
        let started = ContinuousClock.now
        for request in bodies {
            guard case .response = sides[0].1(context, request) else { fail("a Rank call failed") }
        }
        print("\(only!): \(requests) calls, \(Int(nanoseconds(ContinuousClock.now - started)) / requests) ns/call")
        return
    }
    print("\(requests) Rank calls per pass, \(passes) passes per side, alternating; k \(k), \(serving.version)")
    print("| pass | off ns/call | on ns/call | on ÷ off | off allocs/call | on allocs/call |")
    print("|---:|---:|---:|---:|---:|---:|")
    var ratios: [Double] = []
    for pass in 1...passes {
        var cells: [(ns: Double, allocs: Double)] = []
        for (_, body) in sides {
            let before = allocations?() ?? 0
            let started = ContinuousClock.now
            for request in bodies {
                guard case .response = body(context, request) else { fail("a Rank call failed") }
            }
            let elapsed = ContinuousClock.now - started
            let allocated = (allocations?() ?? 0) &- before
            cells.append((nanoseconds(elapsed) / Double(requests), Double(allocated) / Double(requests)))
        }
        ratios.append(cells[1].ns / cells[0].ns)
        print(
            String(
                format: "| %d | %.0f | %.0f | %.4f | %@ | %@ |", pass, cells[0].ns, cells[1].ns, ratios.last!,
                allocations == nil ? "-" : String(format: "%.2f", cells[0].allocs),
                allocations == nil ? "-" : String(format: "%.2f", cells[1].allocs)))
    }
    print(String(format: "median on ÷ off: %.4f", ratios.sorted()[ratios.count / 2]))
    let text = String(decoding: backend.render(), as: UTF8.self)
    let count = text.split(separator: "\n").first { $0.hasPrefix("rankd_rank_seconds_count") } ?? "?"
    print("recorded: \(count)")
}

func scrape(_ arguments: [String]) async {
    let series = option("--series", arguments).flatMap(Int.init) ?? 10_000
    let renders = option("--renders", arguments).flatMap(Int.init) ?? 50
    let backend = PrometheusBackend()
    let timers = min(200, series / 28)
    for index in 0..<timers {
        let timer = backend.makeTimer(
            label: "bench_call_seconds", dimensions: [("service", "svc\(index % 20)"), ("method", "m\(index)")])
        for sample in 0..<100 { timer.recordNanoseconds(Int64(sample * 37_000)) }
    }
    for index in 0..<(series - timers * 28) {
        backend.makeCounter(
            label: "bench_events_total", dimensions: [("kind", "k\(index % 50)"), ("id", "\(index)")]
        ).increment(by: Int64(index))
    }
    let lines = String(decoding: backend.render(), as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }
    var times: [Double] = []
    var bytes = 0
    for _ in 0..<renders {
        let started = ContinuousClock.now
        bytes = backend.render().count
        times.append(nanoseconds(ContinuousClock.now - started) / 1e6)
    }
    times.sort()
    print(
        String(
            format:
                "%d series (%d timers, %d counters), %d bytes: render p50 %.2f ms, p90 %.2f ms, max %.2f ms over %d renders",
            lines.count, timers, series - timers * 28, bytes, times[times.count / 2], times[times.count * 9 / 10],
            times.last!, renders))
    if let seconds = option("--serve", arguments).flatMap(Double.init) {
        do {
            let server = try await MetricsHTTPServer.start(host: "127.0.0.1", port: 0) { backend.render() }
            print("serving on 127.0.0.1:\(server.localAddress?.port ?? 0)")
            fflush(nil)
            try await Task.sleep(for: .seconds(seconds))
            await server.close()
        } catch {
            fail("\(error)")
        }
    }
}

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "rank": rankPasses(arguments)
case "scrape": await scrape(arguments)
default: fail("usage: metrics-bench rank --snapshot DIR ... | metrics-bench scrape ...")
}

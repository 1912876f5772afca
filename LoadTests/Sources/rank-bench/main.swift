// rank-bench: server-side latency of the Rank pipeline, in process, by stage.
//
//   swift run -c release --scratch-path .build-loadtest rank-bench --snapshot DIR \
//       [--requests 20000] [--k 20] [--pool 300] [--method mmr] [--session 0.3] [--unknown 0.1] [--seed 1]
//       [--category NAME]... [--brand NAME]... [--in-stock] [--live-changes N]
//
// `--events N` records N events (80% impressions, 20% clicks, over the last hour) for every user the
// requests name, and asks every request for a frequency cap (3 per item per day) and exclude-purchased
// (a day), with rotation at the config default: the `events` row is reading the user's state and
// deriving history, rotation and caps from it (part of `resolve`).
//
// `--ingest-rate N` (with `--events`) then measures Rank while events are recorded at N events/s and
// while none are, alternating over 5 rounds of all the requests: a second thread does what rankd's
// ingest thread does per batch of 1,000 (protobuf decode, validation, recording; in the idle scheduling
// class as there, `--event-ingest-priority idle`),
// so the difference is lock contention plus the CPU the ingest takes (no network, no client process).
//
// `--live-changes N` serves with a live overlay (as a snapshot root does) holding N removed items, N
// out of stock, N repriced and N with a tag added, so the numbers include reading it.
//
// Requests mirror production mixes: users drawn uniformly from the snapshot, a share with session
// signals, a share of unknown users (cold start). Each request is encoded once up front, then
// timed through decode → resolve → retrieve → rerank → describe → encode, on one thread (the
// server runs a call on one event loop the same way). Prints medians, p90, p99 and max per stage.
// With scripts/alloc-count.c preloaded (LD_PRELOAD=alloc-count.so) it also prints the heap allocations
// per call of the engine (resolve → describe, building the response values included).

import Foundation
import LiveState
import NIOCore
import RankingAPI
import RankingEngine
import SeededRandom
import Snapshot
import SnapshotLifecycle
import Synchronization
import UserEvents

struct Options {
    var snapshot = ""
    var requests = 20_000
    var k = 20
    var pool = 300
    var method: RankRequest.DiversityMethod = .mmr
    var session = 0.3
    var unknown = 0.1
    var seed: UInt64 = 1
    /// Every request's filter (a category page: `--category`; a brand page: `--brand`).
    var categories: [String] = []
    var brands: [String] = []
    var inStock = false
    var liveChanges = 0
    var events = 0
    var ingestRate = 0

    init(_ arguments: [String]) {
        var iterator = arguments.makeIterator()
        func value(_ name: String) -> String {
            guard let value = iterator.next() else { fail("\(name) needs a value") }
            return value
        }
        while let argument = iterator.next() {
            switch argument {
            case "--snapshot": snapshot = value(argument)
            case "--requests": requests = Int(value(argument)) ?? requests
            case "--k": k = Int(value(argument)) ?? k
            case "--pool": pool = Int(value(argument)) ?? pool
            case "--method": method = RankRequest.DiversityMethod(rawValue: value(argument)) ?? method
            case "--session": session = Double(value(argument)) ?? session
            case "--unknown": unknown = Double(value(argument)) ?? unknown
            case "--seed": seed = UInt64(value(argument)) ?? seed
            case "--category": categories.append(value(argument))
            case "--brand": brands.append(value(argument))
            case "--in-stock": inStock = true
            case "--live-changes": liveChanges = Int(value(argument)) ?? liveChanges
            case "--events": events = Int(value(argument)) ?? events
            case "--ingest-rate": ingestRate = Int(value(argument)) ?? ingestRate
            default: fail("unknown argument \(argument)")
            }
        }
        if snapshot.isEmpty { fail("--snapshot DIR is required") }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("rank-bench: \(message)\n".utf8))
    exit(2)
}

@MainActor func run() {
    let options = Options(Array(CommandLine.arguments.dropFirst()))
    let loadStarted = ContinuousClock.now
    let serving: ServingSnapshot
    do {
        serving = try ServingSnapshot.load(directory: options.snapshot, verifyChecksums: false)
    } catch {
        fail("\(error)")
    }
    print(
        "loaded \(serving.version) (\(serving.snapshot.itemIds.count) items, \(serving.snapshot.userIds.count) users, dim \(serving.snapshot.dimension)) in \(ContinuousClock.now - loadStarted)"
    )
    let snapshot = serving.snapshot
    if options.liveChanges > 0 { attachLiveChanges(options.liveChanges, to: serving) }
    let store = options.events > 0 ? UserEventStore(budgetBytes: 256 << 20) : nil
    let engine = RankingEngine(registry: SnapshotRegistry(serving), events: store)
    var recordedUsers = Set<String>()

    var random = SplitMix64(seed: options.seed)
    var encoded: [ByteBuffer] = []
    encoded.reserveCapacity(options.requests)
    for _ in 0..<options.requests {
        var request = RankRequest()
        request.k = options.k
        request.candidatePool = options.pool
        request.diversity.method = options.method
        request.filter.includeCategories = options.categories
        request.filter.includeBrands = options.brands
        request.filter.inStockOnly = options.inStock
        if Double.random(in: 0..<1, using: &random) < options.unknown {
            request.userID = "unknown-\(random.next() % 1_000_000)"
        } else {
            request.userID = snapshot.userIds.id(at: Int(random.next() % UInt64(snapshot.userIds.count))) ?? ""
        }
        if let store, recordedUsers.insert(request.userID).inserted {
            let now = Int64(Date().timeIntervalSince1970)
            for _ in 0..<options.events {
                let item = snapshot.itemIds.id(at: Int(random.next() % UInt64(snapshot.itemIds.count))) ?? ""
                store.record(
                    userKey: EventKey.user(request.userID), itemKey: EventKey.item(item),
                    type: random.next() % 5 == 0 ? .click : .impression, time: UInt32(now - Int64(random.next() % 3600))
                )
            }
        }
        if options.events > 0 {
            request.frequencyCaps = [.init(maxImpressions: 3, windowSeconds: 86_400)]
            request.filter.excludePurchasedWithinSeconds = 86_400
        }
        if Double.random(in: 0..<1, using: &random) < options.session {
            request.recentItemIDs = (0..<Int.random(in: 1...5, using: &random)).compactMap { _ in
                snapshot.itemIds.id(at: Int(random.next() % UInt64(snapshot.itemIds.count)))
            }
        }
        encoded.append(RankCodec.encodeRequest(request))
    }

    var stages: [String: [Double]] = [:]
    func add(_ name: String, _ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        stages[name, default: []].append(Double(seconds) * 1e6 + Double(attoseconds) / 1e12)
    }

    // Warm up scratch buffers and caches, then measure.
    for buffer in encoded.prefix(500) {
        _ = try? engine.rank(RankCodec.decodeRequest(buffer))
    }
    typealias Counter = @convention(c) () -> UInt64
    let allocations = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "rankd_alloc_count").map {
        unsafeBitCast($0, to: Counter.self)
    }
    var engineAllocations: UInt64 = 0
    let clock = ContinuousClock()
    var errors = 0
    let started = clock.now
    for buffer in encoded {
        let t0 = clock.now
        guard let request = try? RankCodec.decodeRequest(buffer) else { fail("decode failed") }
        let t1 = clock.now
        do {
            let before = allocations?() ?? 0
            let (response, timings) = try engine.rankMeasured(request)
            engineAllocations &+= (allocations?() ?? 0) &- before
            let t2 = clock.now
            _ = RankCodec.encodeResponse(response)
            let t3 = clock.now
            add("decode", t1 - t0)
            add("resolve", timings.resolve)
            add("events", timings.events)
            add("retrieve", timings.retrieve)
            add("rerank", timings.rerank)
            add("describe", timings.describe)
            add("encode", t3 - t2)
            add("total", t3 - t0)
        } catch {
            errors += 1
        }
    }
    let elapsed = clock.now - started

    func percentile(_ sorted: [Double], _ p: Double) -> Double {
        sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }
    print(
        "\(options.requests) requests (events \(options.events) per user, k \(options.k), pool \(options.pool), \(options.method), session \(options.session), unknown \(options.unknown), categories \(options.categories), brands \(options.brands)\(options.inStock ? ", in stock" : "")), \(errors) errors, \(elapsed) → \(Int(Double(options.requests) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))) calls/s on one thread"
    )
    if allocations != nil {
        print(
            String(
                format: "engine allocations per call: %.2f (rank → response values)",
                Double(engineAllocations) / Double(max(options.requests - errors, 1))))
    }
    defer {
        if store != nil && options.ingestRate > 0 {
            measureUnderIngest(engine: engine, snapshot: snapshot, encoded: encoded, rate: options.ingestRate)
        }
    }
    print("| stage | p50 µs | p90 µs | p99 µs | max µs |")
    print("|---|---:|---:|---:|---:|")
    for name in ["decode", "resolve", "events", "retrieve", "rerank", "describe", "encode", "total"] {
        let sorted = (stages[name] ?? [0]).sorted()
        print(
            String(
                format: "| %@ | %.1f | %.1f | %.1f | %.1f |", name, percentile(sorted, 0.5), percentile(sorted, 0.9),
                percentile(sorted, 0.99), sorted.last ?? 0))
    }
}

run()

/// Shared with the ingest thread.
final class IngestControl: Sendable {
    let stop = Atomic<Bool>(false)
    let done = Atomic<Bool>(false)
    let recorded = Atomic<Int>(0)
}

/// Rank latency (decode → encode) for every request, with and without events being recorded at `rate`
/// events/s on another thread, alternating; prints both and the p99 ratio.
func measureUnderIngest(engine: RankingEngine, snapshot: Snapshot, encoded: [ByteBuffer], rate: Int) {
    var random = SplitMix64(seed: 99)
    let users = snapshot.userIds.count
    let items = snapshot.itemIds.count
    let batches: [ByteBuffer] = (0..<32).map { _ in
        EventCodec.encodeRequest(
            RecordEventsRequest(
                events: (0..<1000).map { _ in
                    RecordedEvent(
                        userID: snapshot.userIds.id(at: Int(random.next() % UInt64(users))) ?? "",
                        itemID: snapshot.itemIds.id(at: Int(random.next() % UInt64(items))) ?? "",
                        kind: random.next() % 5 == 0 ? .click : .impression)
                }))
    }
    func rankAll() -> [Double] {
        var samples: [Double] = []
        samples.reserveCapacity(encoded.count)
        for buffer in encoded {
            let t0 = ContinuousClock.now
            guard let request = try? RankCodec.decodeRequest(buffer),
                let response = try? engine.rank(request)
            else { fail("rank failed") }
            _ = RankCodec.encodeResponse(response)
            let (seconds, attoseconds) = (ContinuousClock.now - t0).components
            samples.append(Double(seconds) * 1e6 + Double(attoseconds) / 1e12)
        }
        return samples.sorted()
    }
    func p(_ sorted: [Double], _ q: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
    print(
        "\nRank under ingest (\(rate) events/s in batches of 1000, decode + validate + record on a SCHED_IDLE thread):")
    print("| round | ingest | Rank p50 µs | Rank p99 µs | events/s recorded |")
    print("|---:|---|---:|---:|---:|")
    var ratios: [Double] = []
    var offP99s: [Double] = []
    var onP99s: [Double] = []
    for round in 1...5 {
        let off = rankAll()
        let control = IngestControl()
        let interval = 1000.0 / Double(rate)
        let thread = Thread {
            var parameters = sched_param()
            _ = sched_setscheduler(0, 5 /* SCHED_IDLE */, &parameters)
            let started = Date()
            var sent = 0
            while !control.stop.load(ordering: .relaxed) {
                let due = started.addingTimeInterval(Double(sent / 1000) * interval)
                let wait = due.timeIntervalSinceNow
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                guard let request = try? EventCodec.decodeRequest(batches[(sent / 1000) % batches.count]),
                    let result = try? engine.record(request)
                else { fail("record failed") }
                control.recorded.add(result.recorded, ordering: .relaxed)
                sent += 1000
            }
            control.done.store(true, ordering: .releasing)
        }
        let started = ContinuousClock.now
        thread.start()
        let on = rankAll()
        control.stop.store(true, ordering: .relaxed)
        while !control.done.load(ordering: .acquiring) { usleep(100) }
        let (seconds, attoseconds) = (ContinuousClock.now - started).components
        let ingested =
            Double(control.recorded.load(ordering: .relaxed)) / (Double(seconds) + Double(attoseconds) / 1e18)
        print(String(format: "| %d | off | %.1f | %.1f | |", round, p(off, 0.5), p(off, 0.99)))
        print(String(format: "| %d | on | %.1f | %.1f | %.0f |", round, p(on, 0.5), p(on, 0.99), ingested))
        offP99s.append(p(off, 0.99))
        onP99s.append(p(on, 0.99))
        ratios.append(p(on, 0.99) / p(off, 0.99))
    }
    let median = { (values: [Double]) in values.sorted()[values.count / 2] }
    print(
        String(
            format: "medians: Rank p99 off %.1f µs, on %.1f µs; median of the rounds' on/off p99 ratios %.2f",
            median(offP99s), median(onP99s), median(ratios)))
}

/// Attaches a live overlay (in a temporary directory) with `count` removed, out-of-stock, repriced and
/// re-tagged items each, spread over the catalogue, and waits until they are applied.
func attachLiveChanges(_ count: Int, to serving: ServingSnapshot) {
    let snapshot = serving.snapshot
    let live: LiveOverlay
    do {
        live = try LiveOverlay(directory: NSTemporaryDirectory() + "rank-bench-live-" + UUID().uuidString)
    } catch {
        fail("\(error)")
    }
    serving.attach(live)
    let items = snapshot.itemIds.count
    let tag = snapshot.tags.count > 0 ? snapshot.tags.id(at: 0) : nil
    var updates: [ItemUpdate] = []
    for index in 0..<count {
        let id = { (offset: Int) in snapshot.itemIds.id(at: (index * 4 + offset) * 7919 % items) ?? "" }
        updates.append(ItemUpdate(itemID: id(0), removed: true))
        updates.append(ItemUpdate(itemID: id(1), inStock: false))
        updates.append(ItemUpdate(itemID: id(2), price: Double(index % 500)))
        if let tag { updates.append(ItemUpdate(itemID: id(3), addTags: [tag])) }
    }
    let done = DispatchSemaphore(value: 0)
    for start in stride(from: 0, to: updates.count, by: UpdateItemsRequest.maxItems) {
        let batch = UpdateItemsRequest(
            items: Array(updates[start..<min(start + UpdateItemsRequest.maxItems, updates.count)]))
        live.updateItems(batch, against: snapshot) { result in
            if case .failure(let error) = result { fail("\(error)") }
            done.signal()
        }
        done.wait()
    }
    print("live overlay: \(live.status().items) items changed, \(live.status().removedItems) removed")
}

// event-bench: recorded user events (issue 17), two modes.
//
// In process, the event store alone (memory per tracked user and eviction at the budget):
//
//   event-bench memory --users 10000000 --events-per-user 4 --budget-mib 1024 [--shards 64] [--seed 1]
//
//   Records users × events-per-user events in a random user order (every user's events spread over the
//   run, as real traffic is), then reports users tracked, evictions, resident memory added (from
//   /proc/self/statm) per tracked user, the ingest rate on one thread, and the read cost (the copy a Rank
//   call makes) for random users.
//
// Over gRPC against a running rankd (what an edge service would do: client streams of batches):
//
//   event-bench stream --server HOST:PORT --seconds 10 [--streams 2] [--batch 1000] [--messages 50]
//       [--users 50000] [--items 20000] [--impressions 0.8] [--rate 0] [--seed 1]
//
//   Each of `--streams` connections runs StreamEvents calls of `--messages` batches back to back for
//   `--seconds` (a call's response before the next starts, so the client never queues more than one
//   call's messages); events are users u_0… and items sku-0… (the ids `rankctl synth` makes), 80%
//   impressions. `--rate N` paces the streams to N events/s in all (0: as fast as rankd takes them).
//   Prints events recorded per second as rankd acknowledged them.

import Foundation
import GRPCClient
import NIOCore
import NIOPosix
import RankingAPI
import SeededRandom
import UserEvents

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("event-bench: \(message)\n".utf8))
    exit(2)
}

var arguments = Array(CommandLine.arguments.dropFirst())
guard let mode = arguments.first else { fail("usage: event-bench memory|stream [options]") }
arguments.removeFirst()
var options: [String: String] = [:]
var iterator = arguments.makeIterator()
while let name = iterator.next() {
    guard name.hasPrefix("--"), let value = iterator.next() else { fail("expected --name value, got \(name)") }
    options[String(name.dropFirst(2))] = value
}
@MainActor func int(_ name: String, _ fallback: Int) -> Int {
    guard let text = options[name] else { return fallback }
    guard let value = Int(text) else { fail("--\(name) \(text): not an integer") }
    return value
}
@MainActor func double(_ name: String, _ fallback: Double) -> Double {
    guard let text = options[name] else { return fallback }
    guard let value = Double(text) else { fail("--\(name) \(text): not a number") }
    return value
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Resident bytes of this process.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}

@MainActor func memory() {
    let users = int("users", 10_000_000)
    let perUser = int("events-per-user", 4)
    let budget = int("budget-mib", 1024)
    let shards = int("shards", 64)
    var random = SplitMix64(seed: UInt64(int("seed", 1)))
    let baseline = residentBytes()
    let store = UserEventStore(budgetBytes: budget << 20, shardCount: shards)
    let created = residentBytes()
    print(
        "store: budget \(budget) MiB, capacity \(store.capacity) users (\(UserEventStore.bytesPerUser) B each), \(shards) shards; resident after creation +\((created - baseline) >> 20) MiB"
    )
    // Keys as the server makes them from ids "u_<n>" and "sku-<n>" (hashing included in the rate).
    let total = users * perUser
    let now: UInt32 = 1_800_000_000
    let started = ContinuousClock.now
    var checkpoints: [(events: Int, users: Int, evictions: Int, resident: Int)] = []
    for event in 0..<total {
        let user = Int(random.next() % UInt64(users))
        let item = Int(random.next() % 20_000)
        let type: EventType = random.next() % 5 == 0 ? .click : .impression
        store.record(
            userKey: EventKey.user("u_\(user)"), itemKey: EventKey.item("sku-\(item)"), type: type,
            time: now - UInt32(random.next() % 3600))
        if (event + 1) % (total / 8) == 0 {
            checkpoints.append((event + 1, store.users, store.evictions, residentBytes()))
        }
    }
    let elapsed = seconds(ContinuousClock.now - started)
    print(
        String(
            format: "%d events for %d users in %.1f s: %.0f events/s on one thread (id hashing included)", total,
            users, elapsed, Double(total) / elapsed))
    print("| events | users tracked | evictions | resident MiB (over baseline) | bytes per tracked user |")
    print("|---:|---:|---:|---:|---:|")
    for point in checkpoints {
        let added = point.resident - baseline
        print(
            "| \(point.events) | \(point.users) | \(point.evictions) | \(added >> 20) | \(point.users > 0 ? added / point.users : 0) |"
        )
    }
    var view = UserEventView()
    var samples: [Double] = []
    var found = 0
    let clock = ContinuousClock()
    for _ in 0..<200_000 {
        let key = EventKey.user("u_\(random.next() % UInt64(users))")
        let t0 = clock.now
        if store.read(userKey: key, into: &view) { found += 1 }
        samples.append(seconds(clock.now - t0) * 1e9)
    }
    samples.sort()
    print(
        String(
            format:
                "read (copy of one user's state under the shard lock): p50 %.0f ns, p99 %.0f ns; %d of 200000 random users tracked",
            samples[samples.count / 2], samples[samples.count * 99 / 100], found))
}

@MainActor func stream() async throws {
    guard let server = options["server"] else { fail("--server HOST:PORT is required") }
    let parts = server.split(separator: ":")
    guard parts.count == 2, let port = Int(parts[1]) else { fail("--server \(server)") }
    let duration = Duration.seconds(double("seconds", 10))
    let streams = int("streams", 2)
    let batch = int("batch", 1000)
    let messages = int("messages", 50)
    let users = int("users", 50_000)
    let items = int("items", 20_000)
    let impressions = double("impressions", 0.8)
    let rate = double("rate", 0)
    var random = SplitMix64(seed: UInt64(int("seed", 1)))
    // 64 distinct pre-encoded batches, cycled: the client spends its CPU on the wire, not on encoding.
    let batches = (0..<64).map { _ in
        EventCodec.encodeRequest(
            RecordEventsRequest(
                events: (0..<batch).map { _ in
                    RecordedEvent(
                        userID: "u_\(random.next() % UInt64(users))", itemID: "sku-\(random.next() % UInt64(items))",
                        kind: Double(random.next() % 1000) / 1000 < impressions ? .impression : .click)
                }))
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let started = ContinuousClock.now
    let totals = try await withThrowingTaskGroup(of: (Int, Int).self) { tasks in
        for index in 0..<streams {
            tasks.addTask {
                let connection = try await GRPCClientConnection.connect(
                    host: String(parts[0]), port: port, group: group)
                var recorded = 0
                var calls = 0
                var next = index * 7
                var sent = 0
                while ContinuousClock.now - started < duration {
                    if rate > 0 {
                        // Open loop per stream: the call for events [sent, sent + messages × batch) is due when a
                        // stream at rate / streams events/s would have sent `sent`.
                        let due = started + .seconds(Double(sent) / (rate / Double(streams)))
                        if due > ContinuousClock.now { try await Task.sleep(until: due, clock: .continuous) }
                    }
                    sent += messages * batch
                    let call = connection.startCall(path: "/ranking.v1.Ranker/StreamEvents")
                    for _ in 0..<messages {
                        call.send(batches[next % batches.count])
                        next += 1
                    }
                    call.finishRequest()
                    let result = try await call.result.get()
                    recorded += try EventCodec.decodeResponse(try result.unaryResponse()).recorded
                    calls += 1
                }
                await connection.close()
                return (recorded, calls)
            }
        }
        var sum = (0, 0)
        for try await (recorded, calls) in tasks { sum = (sum.0 + recorded, sum.1 + calls) }
        return sum
    }
    let elapsed = seconds(ContinuousClock.now - started)
    print(
        String(
            format:
                "recorded %d events in %d StreamEvents calls (%d streams × %d messages × %d events) in %.2f s: %.0f events/s",
            totals.0, totals.1, streams, messages, batch, elapsed, Double(totals.0) / elapsed))
    try await group.shutdownGracefully()
}

switch mode {
case "memory": memory()
case "stream": try await stream()
default: fail("unknown mode \(mode): memory or stream")
}

import GRPCCore
import LoadHarness
import NIOConcurrencyHelpers
import NIOCore
import Testing

@Suite struct ReloadSchedulerTests {
    final class FakeActivator: SnapshotActivator {
        let calls = NIOLockedValueBox<[String]>([])
        let answer: GRPCStatus
        init(answer: GRPCStatus) { self.answer = answer }
        func activate(version: String) async -> GRPCStatus {
            calls.withLockedValue { $0.append(version) }
            return answer
        }
    }

    @Test func alternatesVersionsOnScheduleWithinTheRun() async {
        let activator = FakeActivator(answer: .ok)
        let scheduler = ReloadScheduler(activator: activator, versions: ["A", "B"], intervalNanos: 100_000_000)
        let start = monotonicNanos()
        await scheduler.run(start: start, warmupNanos: 50_000_000, endNanos: 480_000_000)
        // Due at 150, 250, 350 and 450 ms.
        #expect(activator.calls.withLockedValue { $0 } == ["A", "B", "A", "B"])
        // Never early (tests run in parallel on a busy machine, so lateness is not asserted).
        let times = scheduler.timeline.map(\.atNanos)
        #expect(zip([150, 250, 350, 450], times).allSatisfy { $1 >= UInt64($0) * 1_000_000 }, "\(times)")
        #expect(scheduler.timeline.allSatisfy { $0.status == "OK" })
    }

    @Test func stopsAfterUnimplementedAndSaysWhy() async {
        let activator = FakeActivator(answer: GRPCStatus(.unimplemented, "unknown method"))
        let scheduler = ReloadScheduler(activator: activator, versions: ["A", "B"], intervalNanos: 20_000_000)
        await scheduler.run(start: monotonicNanos(), warmupNanos: 0, endNanos: 200_000_000)
        #expect(activator.calls.withLockedValue { $0 } == ["A"])
        #expect(scheduler.timeline.count == 1)
        #expect(scheduler.timeline[0].status == "UNIMPLEMENTED")
        #expect(scheduler.timeline[0].message.contains("no snapshot admin service"))
    }

    @Test func activateRequestIsProtobufField1() {
        var buffer = ByteBufferAllocator().buffer(capacity: 16)
        AdminRPCActivator.encodeActivateRequest(version: "v2", into: &buffer)
        #expect(buffer.readBytes(length: buffer.readableBytes) == [0x0A, 0x02, 0x76, 0x32])
        var long = ByteBufferAllocator().buffer(capacity: 300)
        AdminRPCActivator.encodeActivateRequest(version: String(repeating: "x", count: 200), into: &long)
        #expect(long.readBytes(length: 3) == [0x0A, 0xC8, 0x01])  // varint 200
    }
}

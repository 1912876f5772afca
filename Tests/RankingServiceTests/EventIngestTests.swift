import Foundation
import GRPCClient
import GRPCServer
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RankingAPI
import RankingEngine
import RankingModel
import SnapshotLifecycle
import Testing
import UserEvents

@testable import RankingService

#if canImport(Glibc)
    import Glibc
#endif

private let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// The event-ingest thread: its order, its scheduling class, and the bound on batches waiting for it.
@Suite(.serialized) struct EventIngestTests {
    @Test func workRunsInSubmissionOrderOnOneThread() async throws {
        let thread = IngestThread(name: "test-ingest", priority: .normal)
        let seen = NIOLockedValueBox<[Int]>([])
        let threads = NIOLockedValueBox<Set<String>>([])
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            for index in 0..<1000 {
                thread.submit {
                    seen.withLockedValue { $0.append(index) }
                    threads.withLockedValue { _ = $0.insert(Thread.current.name ?? "?") }
                    if index == 999 { done.resume() }
                }
            }
        }
        #expect(seen.withLockedValue { $0 } == Array(0..<1000))
        #expect(threads.withLockedValue { $0 } == ["test-ingest"])
    }

    #if os(Linux)
        /// `idle` is Linux's SCHED_IDLE (5): a waking event loop preempts the thread at once.
        @Test func idlePriorityIsTheIdleSchedulingClass() async throws {
            let thread = IngestThread(name: "test-ingest-idle", priority: .idle)
            let policy = await withCheckedContinuation { (done: CheckedContinuation<Int32, Never>) in
                thread.submit { done.resume(returning: sched_getscheduler(0)) }
            }
            #expect(policy == 5)
            let low = await withCheckedContinuation { (done: CheckedContinuation<(String?, Int32, Int32), Never>) in
                thread.setPriority(.low) { refused in
                    done.resume(returning: (refused, sched_getscheduler(0), getpriority(__priority_which_t(0), 0)))
                }
            }
            #expect(low.0 == nil)
            #expect(low.1 == Int32(SCHED_OTHER))
            #expect(low.2 == 10)
        }
    #endif

    @Test func backlogAdmitsUpToItsLimitAndAlwaysOneBatch() {
        let backlog = IngestBacklog(limit: 100)
        #expect(backlog.admit(60))
        #expect(backlog.admit(40))
        #expect(!backlog.admit(1))
        backlog.release(60)
        #expect(backlog.admit(50))
        #expect(!backlog.admit(11))
        backlog.release(40)
        backlog.release(50)
        #expect(backlog.pendingBytes == 0)
        // A batch larger than the limit is still taken when nothing waits.
        #expect(backlog.admit(500))
        #expect(!backlog.admit(1))
    }

    /// With the ingest thread held up, unary batches past the bound are refused with
    /// RESOURCE_EXHAUSTED naming the backlog, and admitted again once it drains.
    @Test func unaryBatchesPastThePendingBoundAreRefused() async throws {
        let engine = RankingEngine(
            registry: SnapshotRegistry<ServingSnapshot>(), events: UserEventStore(budgetBytes: 1 << 20, shardCount: 4))
        var router = GRPCRouter()
        let request = EventCodec.encodeRequest(
            RecordEventsRequest(events: [
                RecordedEvent(userID: "u_1", itemID: "sku-1", kind: .click, timestampMilliseconds: 0)
            ]))
        // Room for one batch only.
        EventService.register(in: &router, engine: engine, maxPendingBytes: request.readableBytes)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await GRPCServer.start(
            host: "127.0.0.1", port: 0, router: router, configuration: GRPCServerConfiguration(), group: group,
            logger: quietLogger)
        let client = try await GRPCClientConnection.connect(
            host: "127.0.0.1", port: server.localAddress!.port!, group: group)
        let path = "/ranking.v1.Ranker/RecordEvents"

        let release = DispatchSemaphore(value: 0)
        EventService.ingest.submit { release.wait() }
        let first = client.unary(path: path, request: request)
        // The first batch is admitted (it waits behind the held thread); give its call time to arrive.
        var second = try await client.unary(path: path, request: request).get()
        for _ in 0..<100 where second.status.code != .resourceExhausted {
            try await Task.sleep(for: .milliseconds(20))
            second = try await client.unary(path: path, request: request).get()
        }
        #expect(second.status.code == .resourceExhausted)
        #expect(second.status.message.contains("event ingestion is behind"))
        release.signal()
        // No snapshot is active, so admitted batches end UNAVAILABLE: admitted, not refused.
        #expect(try await first.get().status.code == .unavailable)
        let third = try await client.unary(path: path, request: request).get()
        #expect(third.status.code == .unavailable)

        await client.close()
        try await server.close()
        try await group.shutdownGracefully()
    }
}

import CoreMetrics
import Dispatch
import Foundation
public import GRPCServer
import NIOConcurrencyHelpers
import NIOCore
import RankingAPI
public import RankingEngine
import RankingModel

/// `ranking.v1.Ranker/RecordEvents` (unary batch) and `StreamEvents` (client stream of batches): the
/// user events the engine's rotation, caps, exclude-purchased and session history read.
///
/// The event loop only checks the token; decoding (a batch of 10,000 events is a few milliseconds),
/// validation and recording run on one dedicated thread (``IngestThread``), by default in Linux's idle
/// scheduling class: a loop that wakes for a Rank call takes the core from it at once, instead of
/// waiting out a scheduler slice as it would behind a nice-10 thread (that wait was Rank's p99 under
/// ingest: 4x without, docs/BENCHMARKS.md "Events"). One thread for every caller: ingestion uses at
/// most one core however many streams send. A stream's next message is read only once the thread has
/// recorded the previous one (its flow-control credit is returned then), so a fast producer is
/// throttled by its HTTP/2 window rather than by memory; unary batches are refused with
/// `RESOURCE_EXHAUSTED` while more than ``maxPendingBytes`` wait to be recorded.
public enum EventService {
    /// Recording runs here, off the event loops.
    static let ingest = IngestThread(name: "rankd-events", priority: .idle)

    /// Bytes of received batches waiting for the ingest thread above which unary `RecordEvents` calls
    /// are refused (`RESOURCE_EXHAUSTED`) rather than queued: reached only when Rank traffic keeps the
    /// cores from an `idle` ingest thread for a while.
    public static let maxPendingBytes = 64 << 20

    /// Sets the ingest thread's priority (rankd's `--event-ingest-priority`); `completion` gets nil or
    /// why the system refused.
    public static func setIngestPriority(
        _ priority: IngestPriority, completion: @escaping @Sendable (String?) -> Void
    ) {
        ingest.setPriority(priority, completion: completion)
    }

    /// Registers both methods under ``RankerService/serviceName``. With `auth`, calls need its token
    /// (the Rank token: the same edge services send both).
    public static func register(
        in router: inout GRPCRouter, engine: RankingEngine, auth: BearerTokenAuth? = nil,
        maxPendingBytes: Int = maxPendingBytes
    ) {
        let metrics = EventMetrics()
        let backlog = IngestBacklog(limit: maxPendingBytes)
        router.register(
            service: RankerService.serviceName, method: "RecordEvents",
            .unary { context, buffer in
                if let auth, let refused = auth.check(context) { return .failure(refused) }
                let bytes = buffer.readableBytes
                guard backlog.admit(bytes) else {
                    metrics.refusedBehind.increment()
                    return .failure(
                        GRPCStatus(
                            .resourceExhausted,
                            "event ingestion is behind: more than \(backlog.limitDescription) of batches wait to be recorded (Rank traffic has the cores); retry with backoff"
                        ))
                }
                let promise = context.eventLoop.makePromise(of: ByteBuffer.self)
                ingest.submit {
                    let outcome: Result<RecordEventsResult, GRPCStatus>
                    do throws(GRPCStatus) {
                        outcome = .success(try record(buffer, engine: engine, metrics: metrics, prefix: ""))
                    } catch {
                        outcome = .failure(error)
                    }
                    // Out of the backlog before the caller hears back, so its next batch finds room.
                    backlog.release(bytes)
                    promise.completeWith(outcome.map { EventCodec.encodeResponse($0) }.mapError { $0 as any Error })
                }
                return .future(promise.futureResult)
            })
        router.register(
            service: RankerService.serviceName, method: "StreamEvents",
            .clientStreaming { context in
                EventStreamCall(
                    context: context, engine: engine, metrics: metrics, backlog: backlog,
                    rejected: auth.flatMap { $0.check(context) })
            })
    }

    /// Decodes and records one batch; `prefix` names the stream message in errors.
    static func record(_ buffer: ByteBuffer, engine: RankingEngine, metrics: EventMetrics, prefix: String)
        throws(GRPCStatus) -> RecordEventsResult
    {
        let request: RecordEventsRequest
        do throws(GRPCStatus) {
            request = try EventCodec.decodeRequest(buffer)
        } catch {
            metrics.rejected.increment()
            throw GRPCStatus(error.code, prefix + error.message)
        }
        do throws(RankError) {
            let result = try engine.record(request)
            metrics.record(result)
            return result
        } catch {
            metrics.rejected.increment()
            let status = RankerService.status(for: error)
            throw GRPCStatus(status.code, prefix + status.message)
        }
    }
}

/// Event counters (swift-metrics; exported when metrics are on). Per batch, not per event.
struct EventMetrics: Sendable {
    let recorded = Counter(label: "rankd_events_recorded_total")
    let unknownItems = Counter(label: "rankd_events_unknown_items_total")
    let skippedNoConsent = Counter(label: "rankd_events_skipped_no_consent_total")
    let rejected = Counter(label: "rankd_events_rejected_batches_total")
    let refusedBehind = Counter(label: "rankd_events_refused_behind_total")

    func record(_ result: RecordEventsResult) {
        if result.recorded > 0 { recorded.increment(by: Int64(result.recorded)) }
        if result.unknownItems > 0 { unknownItems.increment(by: Int64(result.unknownItems)) }
        if result.skippedNoConsent > 0 { skippedNoConsent.increment(by: Int64(result.skippedNoConsent)) }
    }
}

/// One `StreamEvents` call: each message is decoded and recorded on ``EventService/ingest``, in order;
/// the first failure ends the call (the batches before it stay recorded).
final class EventStreamCall: ClientStreamingCall {
    private let context: ServerCallContext
    private let engine: RankingEngine
    private let metrics: EventMetrics
    private let backlog: IngestBacklog
    private let rejected: GRPCStatus?
    /// Totals and the first failure, written on the ingest thread.
    private let state = NIOLockedValueBox<(total: RecordEventsResult, failure: GRPCStatus?)>((.init(), nil))
    private var messages = 0

    init(
        context: ServerCallContext, engine: RankingEngine, metrics: EventMetrics, backlog: IngestBacklog,
        rejected: GRPCStatus?
    ) {
        self.context = context
        self.engine = engine
        self.metrics = metrics
        self.backlog = backlog
        self.rejected = rejected
    }

    func receive(_ message: ByteBuffer) throws(GRPCStatus) -> EventLoopFuture<Void>? {
        if let rejected { throw rejected }
        if let failed = state.withLockedValue({ $0.failure }) { throw failed }
        let index = messages
        messages += 1
        let (engine, metrics, state, backlog) = (self.engine, self.metrics, self.state, self.backlog)
        let consumed = context.eventLoop.makePromise(of: Void.self)
        // Counted, never refused: a stream has one message in flight, and its window throttles it.
        let bytes = message.readableBytes
        backlog.add(bytes)
        EventService.ingest.submit {
            if state.withLockedValue({ $0.failure }) == nil {
                do throws(GRPCStatus) {
                    let result = try EventService.record(
                        message, engine: engine, metrics: metrics, prefix: "message \(index): ")
                    state.withLockedValue { $0.total += result }
                } catch {
                    state.withLockedValue { $0.failure = $0.failure ?? error }
                }
            }
            backlog.release(bytes)
            consumed.succeed()
        }
        return consumed.futureResult
    }

    func finish() -> UnaryResult {
        if let rejected { return .failure(rejected) }
        // Through the ingest thread: every message's work was submitted before the half-close, so it has
        // run by then and the totals include the last batch.
        let promise = context.eventLoop.makePromise(of: ByteBuffer.self)
        let state = self.state
        EventService.ingest.submit {
            let (total, failure) = state.withLockedValue { $0 }
            if let failure { return promise.fail(failure) }
            promise.succeed(EventCodec.encodeResponse(total))
        }
        return .future(promise.futureResult)
    }

    func cancel() {}
}

/// Bytes of received event batches not yet recorded by the ingest thread (`rankd_events_pending_bytes`).
final class IngestBacklog: Sendable {
    let limit: Int
    private let bytes = NIOLockedValueBox(0)
    private let gauge = Gauge(label: "rankd_events_pending_bytes")

    init(limit: Int) { self.limit = limit }

    var limitDescription: String { limit >= 1 << 20 ? "\(limit >> 20) MiB" : "\(limit) bytes" }

    /// Counts `count` more bytes unless the backlog is already over the limit (one batch may cross it:
    /// a batch larger than the limit is still taken when nothing waits).
    func admit(_ count: Int) -> Bool {
        bytes.withLockedValue { bytes in
            guard bytes <= limit - count || bytes == 0 else { return false }
            bytes += count
            gauge.record(bytes)
            return true
        }
    }

    func add(_ count: Int) { change(by: count) }
    func release(_ count: Int) { change(by: -count) }
    var pendingBytes: Int { bytes.withLockedValue { $0 } }

    private func change(by count: Int) {
        bytes.withLockedValue { bytes in
            bytes += count
            gauge.record(bytes)
        }
    }
}

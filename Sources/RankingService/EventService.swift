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
/// validation and recording run on one serial queue at nice 10 (as live updates do), so Rank calls on
/// the same loop never wait for a batch, and the loops win the cores when both want them. One queue for
/// every caller: ingestion uses at most one core however many streams send. A stream's next message is read only once the queue has recorded the
/// previous one (its flow-control credit is returned then), so a fast producer is throttled by its
/// HTTP/2 window rather than by memory.
public enum EventService {
    /// Recording runs here, off the event loops.
    static let queue = DispatchQueue(label: "rankd.events")

    /// Registers both methods under ``RankerService/serviceName``. With `auth`, calls need its token
    /// (the Rank token: the same edge services send both).
    public static func register(in router: inout GRPCRouter, engine: RankingEngine, auth: BearerTokenAuth? = nil) {
        let metrics = EventMetrics()
        router.register(
            service: RankerService.serviceName, method: "RecordEvents",
            .unary { context, buffer in
                if let auth, let refused = auth.check(context) { return .failure(refused) }
                let promise = context.eventLoop.makePromise(of: ByteBuffer.self)
                queue.async {
                    lowerCurrentThreadPriority()
                    do throws(GRPCStatus) {
                        let result = try record(buffer, engine: engine, metrics: metrics, prefix: "")
                        promise.succeed(EventCodec.encodeResponse(result))
                    } catch {
                        promise.fail(error)
                    }
                }
                return .future(promise.futureResult)
            })
        router.register(
            service: RankerService.serviceName, method: "StreamEvents",
            .clientStreaming { context in
                EventStreamCall(
                    context: context, engine: engine, metrics: metrics,
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

    func record(_ result: RecordEventsResult) {
        if result.recorded > 0 { recorded.increment(by: Int64(result.recorded)) }
        if result.unknownItems > 0 { unknownItems.increment(by: Int64(result.unknownItems)) }
        if result.skippedNoConsent > 0 { skippedNoConsent.increment(by: Int64(result.skippedNoConsent)) }
    }
}

/// One `StreamEvents` call: each message is decoded and recorded on ``EventService/queue``, in order;
/// the first failure ends the call (the batches before it stay recorded).
final class EventStreamCall: ClientStreamingCall {
    private let context: ServerCallContext
    private let engine: RankingEngine
    private let metrics: EventMetrics
    private let rejected: GRPCStatus?
    /// Totals and the first failure, written on the queue.
    private let state = NIOLockedValueBox<(total: RecordEventsResult, failure: GRPCStatus?)>((.init(), nil))
    private var messages = 0

    init(context: ServerCallContext, engine: RankingEngine, metrics: EventMetrics, rejected: GRPCStatus?) {
        self.context = context
        self.engine = engine
        self.metrics = metrics
        self.rejected = rejected
    }

    func receive(_ message: ByteBuffer) throws(GRPCStatus) -> EventLoopFuture<Void>? {
        if let rejected { throw rejected }
        if let failed = state.withLockedValue({ $0.failure }) { throw failed }
        let index = messages
        messages += 1
        let (engine, metrics, state) = (self.engine, self.metrics, self.state)
        let consumed = context.eventLoop.makePromise(of: Void.self)
        EventService.queue.async {
            lowerCurrentThreadPriority()
            if state.withLockedValue({ $0.failure }) == nil {
                do throws(GRPCStatus) {
                    let result = try EventService.record(
                        message, engine: engine, metrics: metrics, prefix: "message \(index): ")
                    state.withLockedValue { $0.total += result }
                } catch {
                    state.withLockedValue { $0.failure = $0.failure ?? error }
                }
            }
            consumed.succeed()
        }
        return consumed.futureResult
    }

    func finish() -> UnaryResult {
        if let rejected { return .failure(rejected) }
        // Through the serial queue: every message's work was queued before the half-close, so it has
        // run by then and the totals include the last batch.
        let promise = context.eventLoop.makePromise(of: ByteBuffer.self)
        let state = self.state
        EventService.queue.async {
            let (total, failure) = state.withLockedValue { $0 }
            if let failure { return promise.fail(failure) }
            promise.succeed(EventCodec.encodeResponse(total))
        }
        return .future(promise.futureResult)
    }

    func cancel() {}
}

import CoreMetrics
import Dispatch
import Foundation
public import GRPCServer
public import LiveState
public import Logging
import NIOConcurrencyHelpers
import NIOCore
import RankingAPI
public import RankingEngine
public import SnapshotLifecycle

/// `ranking.v1.SnapshotAdmin`: Publish, Activate, Rollback, Status over a ``SnapshotStore``.
///
/// Every method checks the bearer token first (nothing is read or written for a refused call).
/// Disk writes, validation and activation run on dispatch queues, never on the event loop that
/// received the call: the loop decodes, hands off, and sends the answer when the work completes.
public enum SnapshotAdminService {
    public static let serviceName = "ranking.v1.SnapshotAdmin"

    /// Registers the methods on `router`: Publish, Activate, Rollback, Status, and with `live` the live
    /// updates UpdateItems and DeleteUser (SnapshotAdminService+LiveUpdates.swift).
    ///
    /// - Parameter beforeChunkWrite: a test hook, `nil` in production: runs on a publish's disk
    ///   queue before each chunk is written (tests make the disk slow with it).
    public static func register(
        in router: inout GRPCRouter, store: SnapshotStore<ServingSnapshot>, live: LiveOverlay? = nil,
        auth: BearerTokenAuth, logger: Logger, beforeChunkWrite: (@Sendable () -> Void)? = nil
    ) {
        if let live { registerLiveUpdates(in: &router, store: store, live: live, auth: auth, logger: logger) }
        router.register(
            service: serviceName, method: "Publish",
            .clientStreaming { context in
                PublishCall(
                    context: context, store: store, rejected: auth.check(context), logger: logger,
                    beforeChunkWrite: beforeChunkWrite)
            })
        router.register(
            service: serviceName, method: "Activate",
            .unary { context, buffer in
                if let refused = auth.check(context) { return .failure(refused) }
                let version: String
                do throws(GRPCStatus) {
                    version = try AdminCodec.decodeActivateRequest(buffer)
                } catch {
                    return .failure(error)
                }
                return offLoop(context) { () throws(SnapshotStoreError) in
                    let result = try store.activate(version)
                    logger.info(
                        "snapshot activated",
                        metadata: [
                            "version": "\(result.activeVersion)", "previous": "\(result.previousVersion)",
                            "load_ms": "\(Int(result.loadMilliseconds))", "by": "activate",
                        ])
                    return AdminCodec.encodeActivation(result)
                }
            })
        router.register(
            service: serviceName, method: "Rollback",
            .unary { context, buffer in
                if let refused = auth.check(context) { return .failure(refused) }
                do throws(GRPCStatus) {
                    try AdminCodec.decodeEmptyRequest(buffer, rollback: true)
                } catch {
                    return .failure(error)
                }
                return offLoop(context) { () throws(SnapshotStoreError) in
                    let result = try store.rollback()
                    logger.info(
                        "snapshot rolled back",
                        metadata: ["version": "\(result.activeVersion)", "previous": "\(result.previousVersion)"])
                    return AdminCodec.encodeActivation(result, rollback: true)
                }
            })
        router.register(
            service: serviceName, method: "Status",
            .unary { context, buffer in
                if let refused = auth.check(context) { return .failure(refused) }
                do throws(GRPCStatus) {
                    try AdminCodec.decodeEmptyRequest(buffer, rollback: false)
                } catch {
                    return .failure(error)
                }
                return offLoop(context) { () throws(SnapshotStoreError) in
                    var status = store.status()
                    if let live { status.overlay = live.status() }
                    return AdminCodec.encodeStatus(status)
                }
            })
    }

    /// The gRPC status for a store error (see the error model in DESIGN.md).
    static func status(for error: SnapshotStoreError) -> GRPCStatus {
        let code: GRPCStatus.Code =
            switch error.code {
            case .invalidArgument: .invalidArgument
            case .notFound: .notFound
            case .alreadyExists: .alreadyExists
            case .failedPrecondition: .failedPrecondition
            case .resourceExhausted: .resourceExhausted
            case .aborted: .aborted
            case .internalError: .internal
            }
        return GRPCStatus(code, error.message)
    }

    /// Runs `work` on a thread of its own at lowered priority and completes the call with its
    /// result on the call's loop.
    private static func offLoop(
        _ context: ServerCallContext, _ work: @escaping @Sendable () throws(SnapshotStoreError) -> ByteBuffer
    ) -> UnaryResult {
        let promise = context.eventLoop.makePromise(of: ByteBuffer.self)
        Thread.detachNewThread {
            lowerCurrentThreadPriority()
            do throws(SnapshotStoreError) {
                promise.succeed(try work())
            } catch {
                promise.fail(status(for: error))
            }
        }
        return .future(promise.futureResult)
    }
}

/// One `Publish` call. Messages arrive on the event loop; decoding happens there, everything that
/// touches the disk runs in order on the call's own serial queue. Each message's future completes
/// once the queue is done with it, so the server returns its flow-control credit only then: a disk
/// slower than the network throttles the uploader through its HTTP/2 stream window (see
/// `GRPCServerConfiguration.deferredConsumptionLimit` for the memory bound), and the event loop
/// never waits for the disk.
final class PublishCall: ClientStreamingCall {
    private let context: ServerCallContext
    private let store: SnapshotStore<ServingSnapshot>
    private let logger: Logger
    private let rejected: GRPCStatus?
    private let queue = DispatchQueue(label: "rankd.publish")
    /// The first failure seen on the queue; later messages fail the call with it.
    private let failure = NIOLockedValueBox<GRPCStatus?>(nil)
    /// Touched only on `queue`.
    private let session = NIOLockedValueBox<PublishSession<ServingSnapshot>?>(nil)
    private var sawHeader = false
    private let started = NIODeadline.now()
    private let beforeChunkWrite: (@Sendable () -> Void)?

    init(
        context: ServerCallContext, store: SnapshotStore<ServingSnapshot>, rejected: GRPCStatus?, logger: Logger,
        beforeChunkWrite: (@Sendable () -> Void)? = nil
    ) {
        self.context = context
        self.store = store
        self.rejected = rejected
        self.logger = logger
        self.beforeChunkWrite = beforeChunkWrite
    }

    func receive(_ message: ByteBuffer) throws(GRPCStatus) -> EventLoopFuture<Void>? {
        if let rejected { throw rejected }
        if let failed = failure.withLockedValue({ $0 }) { throw failed }
        switch try AdminCodec.decodePublishRequest(message) {
        case .header(let header):
            guard !sawHeader else { throw GRPCStatus(.invalidArgument, "Publish: a second header arrived") }
            sawHeader = true
            let (store, session, failure) = (self.store, self.session, self.failure)
            return onQueue {
                lowerCurrentThreadPriority()
                do throws(SnapshotStoreError) {
                    let begun = try store.beginPublish(header)
                    session.withLockedValue { $0 = begun }
                } catch {
                    failure.withLockedValue { $0 = $0 ?? SnapshotAdminService.status(for: error) }
                }
            }
        case .chunk(let chunk):
            guard sawHeader else { throw GRPCStatus(.invalidArgument, "Publish: the first message must be the header") }
            let (session, failure, hook) = (self.session, self.failure, beforeChunkWrite)
            return onQueue {
                guard failure.withLockedValue({ $0 }) == nil, let open = session.withLockedValue({ $0 }) else { return }
                hook?()
                do throws(SnapshotStoreError) {
                    try open.write(chunk)
                } catch {
                    failure.withLockedValue { $0 = $0 ?? SnapshotAdminService.status(for: error) }
                }
            }
        }
    }

    /// Runs `work` on the call's queue; the returned future completes once it has run, which
    /// releases the message's flow-control credit to the uploader.
    private func onQueue(_ work: @escaping @Sendable () -> Void) -> EventLoopFuture<Void> {
        let consumed = context.eventLoop.makePromise(of: Void.self)
        queue.async {
            work()
            consumed.succeed()
        }
        return consumed.futureResult
    }

    func finish() -> UnaryResult {
        if let rejected { return .failure(rejected) }
        guard sawHeader else { return .failure(GRPCStatus(.invalidArgument, "Publish: no header was sent")) }
        let promise = context.eventLoop.makePromise(of: ByteBuffer.self)
        let (session, failure, logger, started) = (self.session, self.failure, self.logger, self.started)
        queue.async {
            lowerCurrentThreadPriority()
            if let failed = failure.withLockedValue({ $0 }) {
                session.withLockedValue { $0?.abort() }
                return promise.fail(failed)
            }
            guard let open = session.withLockedValue({ $0 }) else {
                return promise.fail(GRPCStatus(.internal, "Publish: no session after a successful header"))
            }
            do throws(SnapshotStoreError) {
                let result = try open.commit()
                let elapsed = (NIODeadline.now() - started).nanoseconds
                let seconds = Double(elapsed) / 1e9
                CoreMetrics.Timer(label: "rankd_snapshot_publish_seconds").recordNanoseconds(elapsed)
                Counter(label: "rankd_snapshot_publish_bytes_total").increment(by: Int64(result.bytesWritten))
                Counter(label: "rankd_snapshot_publishes_total", dimensions: [("result", "ok")]).increment()
                logger.info(
                    "snapshot published",
                    metadata: [
                        "version": "\(result.version)", "bytes": "\(result.bytesWritten)",
                        "already_present": "\(result.alreadyPresent)", "seconds": "\(seconds)",
                        "validate_ms": "\(Int(result.validateMilliseconds))",
                        "activated": "\(!result.activeVersion.isEmpty)",
                    ])
                promise.succeed(AdminCodec.encodePublishResponse(result))
            } catch {
                Counter(label: "rankd_snapshot_publishes_total", dimensions: [("result", "refused")]).increment()
                logger.warning("publish refused", metadata: ["version": "\(open.header.version)", "error": "\(error)"])
                promise.fail(SnapshotAdminService.status(for: error))
            }
        }
        return .future(promise.futureResult)
    }

    func cancel() {
        let session = self.session
        queue.async { session.withLockedValue { $0?.abort() } }
    }
}

/// Admin work (checksumming, pre-faulting, writing a snapshot) is CPU- and I/O-heavy but never
/// urgent; the event loops serving Rank are. On Linux `setpriority(PRIO_PROCESS, 0, n)` sets the
/// nice value of the calling thread only (setpriority(2), NOTES), so raising it to 10 lets the
/// loops win the cores during a publish or an activation. Failure only costs that preference.
func lowerCurrentThreadPriority() {
    _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
}

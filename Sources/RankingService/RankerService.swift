public import GRPCServer
public import Logging
import NIOCore
import RankingAPI
public import RankingEngine
import RankingModel
import Tracing

/// `ranking.v1.Ranker/Rank`: decode → engine (on the event loop that received the call, no
/// thread hop) → encode. Engine errors become the statuses of the error model.
public enum RankerService {
    public static let serviceName = "ranking.v1.Ranker"

    /// Registers `Rank` on `router`. With `auth`, every call must carry its bearer token
    /// (`--rank-token-file`); by default Rank needs none. `observability` turns on metrics and the
    /// access log (see ``RankObservability``); create it after bootstrapping swift-metrics.
    public static func register(
        in router: inout GRPCRouter, engine: RankingEngine, logger: Logger, auth: BearerTokenAuth? = nil,
        observability: RankObservability = .init()
    ) {
        let observed = ObservedRank(observability)
        router.register(
            service: serviceName, method: "Rank",
            .unary { context, buffer in
                if let auth, let refused = auth.check(context) { return .failure(refused) }
                if let observed { return observed.rank(context, buffer, engine: engine, logger: logger) }
                let request: RankRequest
                do throws(GRPCStatus) {
                    request = try RankCodec.decodeRequest(buffer)
                } catch {
                    return .failure(error)
                }
                let remaining = context.remainingTime()?.nanoseconds
                do throws(RankError) {
                    let response = try engine.rank(request, remainingNanoseconds: remaining)
                    logDebug(logger, request, response)
                    return .response(RankCodec.encodeResponse(response))
                } catch {
                    return .failure(status(for: error))
                }
            })
        router.register(
            service: serviceName, method: "Related",
            .unary { context, buffer in
                if let auth, let refused = auth.check(context) { return .failure(refused) }
                if let observed {
                    return observed.rank(context, buffer, engine: engine, logger: logger, related: true)
                }
                do throws(GRPCStatus) {
                    let request = try RelatedCodec.decodeRelatedRequest(buffer)
                    do throws(RankError) {
                        let response = try engine.related(
                            request, remainingNanoseconds: context.remainingTime()?.nanoseconds)
                        return .response(RankCodec.encodeResponse(response))
                    } catch {
                        return .failure(status(for: error))
                    }
                } catch {
                    return .failure(error)
                }
            })
        router.register(
            service: serviceName, method: "RankBatch",
            .serverStreaming { context, buffer, writer in
                if let auth, let refused = auth.check(context) { return writer.finish(refused) }
                do throws(GRPCStatus) {
                    let (users, rules) = try RelatedCodec.decodeBatchRequest(buffer)
                    guard rules.userID.isEmpty else {
                        throw GRPCStatus(.invalidArgument, "rules.user_id: must be empty (the users are user_ids)")
                    }
                    guard rules.seedItemIDs.isEmpty else {
                        throw GRPCStatus(.invalidArgument, "rules: seed items are not allowed in RankBatch")
                    }
                    RankBatchJob(users: users, rules: rules, engine: engine, context: context, writer: writer).next()
                } catch {
                    writer.finish(error)
                }
            })
    }

    static func logDebug(_ logger: Logger, _ request: RankRequest, _ response: RankResponse) {
        guard logger.logLevel <= .debug else { return }
        logger.debug(
            "rank",
            metadata: [
                "user": "\(request.userID)", "strategy": "\(response.strategy)",
                "arm": "\(response.experimentArm)", "items": "\(response.items.count)",
                "context": "\(request.context.sorted { $0.key < $1.key })",
            ])
    }

    static func status(for error: RankError) -> GRPCStatus {
        switch error {
        case .invalidArgument(let message): GRPCStatus(.invalidArgument, message)
        case .unavailable(let message): GRPCStatus(.unavailable, message)
        case .deadlineExceeded(let message): GRPCStatus(.deadlineExceeded, message)
        case .internalError(let message): GRPCStatus(.internal, message)
        }
    }
}

/// Rank with timing: the same steps as the plain path, each timed, then recorded and sampled for
/// the access log. Only built when something needs the times.
private final class ObservedRank: Sendable {
    let metrics: RankMetrics?
    let sampler: AccessLogSampler?
    let accessLogger: Logger?
    let tracer: (any Tracer)?

    init?(_ observability: RankObservability) {
        guard observability.timesCalls else { return nil }
        metrics = observability.recordsMetrics ? RankMetrics() : nil
        sampler = observability.accessLogEvery.map(AccessLogSampler.init(every:))
        accessLogger = observability.accessLogger
        tracer = observability.tracer
    }

    /// One observed Rank call, or Related (`related`: its own decoder and engine entry; access log
    /// and spans as Rank's, named by the method; the Rank metrics are Rank's alone).
    func rank(
        _ context: ServerCallContext, _ buffer: ByteBuffer, engine: RankingEngine, logger: Logger,
        related: Bool = false
    ) -> UnaryResult {
        let wallStart = tracer == nil ? 0 : DefaultTracerClock.now.nanosecondsSinceEpoch
        let started = NIODeadline.now()
        var timing = RankCallTiming()
        let request: RankRequest
        do throws(GRPCStatus) {
            request = try related ? RelatedCodec.decodeRelatedRequest(buffer) : RankCodec.decodeRequest(buffer)
        } catch {
            log(context, status: error.code, started: started, response: nil)
            trace(context, wallStart: wallStart, started: started, timing: nil, status: error, response: nil)
            return .failure(error)
        }
        let decoded = NIODeadline.now()
        timing.decode = (decoded - started).nanoseconds
        let response: RankResponse
        do throws(RankError) {
            let remaining = context.remainingTime(now: decoded)?.nanoseconds
            (response, timing.engine) =
                try related
                ? engine.relatedMeasured(request, remainingNanoseconds: remaining)
                : engine.rankMeasured(request, remainingNanoseconds: remaining)
        } catch {
            let status = RankerService.status(for: error)
            log(context, status: status.code, started: started, response: nil)
            trace(context, wallStart: wallStart, started: started, timing: nil, status: status, response: nil)
            return .failure(status)
        }
        RankerService.logDebug(logger, request, response)
        let encodeStarted = NIODeadline.now()
        let encoded = RankCodec.encodeResponse(response)
        let finished = NIODeadline.now()
        timing.encodeStart = (encodeStarted - started).nanoseconds
        timing.encode = (finished - encodeStarted).nanoseconds
        timing.total = (finished - started).nanoseconds
        if !related { metrics?.record(timing, response: response) }
        log(context, status: .ok, started: started, response: response, finished: finished)
        trace(context, wallStart: wallStart, started: started, timing: timing, status: .ok, response: response)
        return .response(encoded)
    }

    /// The call's spans, after the fact from the measured stage times: a server span parented by
    /// the caller's `traceparent` (if any) and one child per stage, laid end to end.
    private func trace(
        _ context: ServerCallContext, wallStart: UInt64, started: NIODeadline, timing: RankCallTiming?,
        status: GRPCStatus, response: RankResponse?
    ) {
        guard let tracer else { return }
        var parent = InstrumentationContext.topLevel
        tracer.extract(context.metadata, into: &parent, using: MetadataExtractor())
        func at(_ offset: Int64) -> WallInstant {
            WallInstant(nanosecondsSinceEpoch: wallStart &+ UInt64(max(offset, 0)))
        }
        let root = tracer.startSpan(String(context.path.dropFirst()), context: parent, ofKind: .server, at: at(0))
        root.attributes["rpc.system"] = "grpc"
        root.attributes["rpc.service"] = RankerService.serviceName
        root.attributes["rpc.method"] = String(context.path.split(separator: "/").last ?? "")
        root.attributes["rpc.grpc.status_code"] = Int64(status.code.rawValue)
        if status.code != .ok {
            root.setStatus(SpanStatus(code: .error, message: status.message))
        }
        if let response {
            root.attributes["rankd.strategy"] = response.strategy.rawValue
            root.attributes["rankd.snapshot_version"] = response.snapshotVersion
            root.attributes["rankd.items"] = Int64(response.items.count)
            root.attributes["rankd.candidates_considered"] = Int64(response.candidatesConsidered)
            if response.degraded { root.attributes["rankd.degraded"] = true }
        }
        if let timing {
            var offset: Int64 = 0
            func stage(_ name: String, _ duration: Int64) {
                let span = tracer.startSpan(name, context: root.context, ofKind: .internal, at: at(offset))
                offset += duration
                span.end(at: at(offset))
            }
            stage("decode", timing.decode)
            stage("query", timing.engine.resolve.nanoseconds)
            stage("retrieve", timing.engine.retrieve.nanoseconds)
            stage("rerank", timing.engine.rerank.nanoseconds)
            stage("describe", timing.engine.describe.nanoseconds)
            offset = timing.encodeStart
            stage("encode", timing.encode)
        }
        root.end(at: at((NIODeadline.now() - started).nanoseconds))
    }

    /// One logfmt access line, for the sampled calls only (this is where it allocates).
    private func log(
        _ context: ServerCallContext, status: GRPCStatus.Code, started: NIODeadline, response: RankResponse?,
        finished: NIODeadline = .now()
    ) {
        guard let sampler, let accessLogger, sampler.next() else { return }
        var metadata: Logger.Metadata = [
            "method": "\(context.path)", "status": "\(status)",
            "us": "\((finished - started).nanoseconds / 1000)",
        ]
        if let response {
            metadata["strategy"] = "\(response.strategy)"
            metadata["version"] = "\(response.snapshotVersion)"
            metadata["items"] = "\(response.items.count)"
            if response.degraded { metadata["degraded"] = "true" }
        }
        if let peer = context.remoteAddress { metadata["peer"] = "\(peer)" }
        accessLogger.info("access", metadata: metadata)
    }
}

/// Reads `traceparent` (and any other key) from a call's metadata.
private struct MetadataExtractor: Extractor {
    func extract(key: String, from carrier: [(name: String, value: String)]) -> String? {
        carrier.first { $0.name == key }?.value
    }
}

/// A span time as nanoseconds since the Unix epoch.
private struct WallInstant: TracerInstant {
    var nanosecondsSinceEpoch: UInt64
    static func < (lhs: WallInstant, rhs: WallInstant) -> Bool { lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch }
}

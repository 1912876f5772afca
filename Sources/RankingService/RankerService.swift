public import GRPCServer
public import Logging
import NIOCore
import RankingAPI
public import RankingEngine
import RankingModel

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

    init?(_ observability: RankObservability) {
        guard observability.timesCalls else { return nil }
        metrics = observability.recordsMetrics ? RankMetrics() : nil
        sampler = observability.accessLogEvery.map(AccessLogSampler.init(every:))
        accessLogger = observability.accessLogger
    }

    func rank(_ context: ServerCallContext, _ buffer: ByteBuffer, engine: RankingEngine, logger: Logger) -> UnaryResult {
        let started = NIODeadline.now()
        var timing = RankCallTiming()
        let request: RankRequest
        do throws(GRPCStatus) {
            request = try RankCodec.decodeRequest(buffer)
        } catch {
            log(context, status: error.code, started: started, response: nil)
            return .failure(error)
        }
        let decoded = NIODeadline.now()
        timing.decode = (decoded - started).nanoseconds
        let response: RankResponse
        do throws(RankError) {
            (response, timing.engine) = try engine.rankMeasured(
                request, remainingNanoseconds: context.remainingTime(now: decoded)?.nanoseconds)
        } catch {
            let status = RankerService.status(for: error)
            log(context, status: status.code, started: started, response: nil)
            return .failure(status)
        }
        RankerService.logDebug(logger, request, response)
        let encodeStarted = NIODeadline.now()
        let encoded = RankCodec.encodeResponse(response)
        let finished = NIODeadline.now()
        timing.encode = (finished - encodeStarted).nanoseconds
        timing.total = (finished - started).nanoseconds
        metrics?.record(timing, response: response)
        log(context, status: .ok, started: started, response: response, finished: finished)
        return .response(encoded)
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

public import GRPCServer
public import Logging
import NIOCore
import RankingAPI
public import RankingEngine

/// `ranking.v1.Ranker/Rank`: decode → engine (on the event loop that received the call, no
/// thread hop) → encode. Engine errors become the statuses of the error model.
public enum RankerService {
    public static let serviceName = "ranking.v1.Ranker"

    /// Registers `Rank` on `router`. With `auth`, every call must carry its bearer token
    /// (`--rank-token-file`); by default Rank needs none.
    public static func register(
        in router: inout GRPCRouter, engine: RankingEngine, logger: Logger, auth: BearerTokenAuth? = nil
    ) {
        router.register(
            service: serviceName, method: "Rank",
            .unary { context, buffer in
                if let auth, let refused = auth.check(context) { return .failure(refused) }
                let request: RankRequest
                do throws(GRPCStatus) {
                    request = try RankCodec.decodeRequest(buffer)
                } catch {
                    return .failure(error)
                }
                let remaining = context.remainingTime()?.nanoseconds
                do throws(RankError) {
                    let response = try engine.rank(request, remainingNanoseconds: remaining)
                    if logger.logLevel <= .debug {
                        logger.debug(
                            "rank",
                            metadata: [
                                "user": "\(request.userID)", "strategy": "\(response.strategy)",
                                "arm": "\(response.experimentArm)", "items": "\(response.items.count)",
                                "context": "\(request.context.sorted { $0.key < $1.key })",
                            ])
                    }
                    return .response(RankCodec.encodeResponse(response))
                } catch {
                    return .failure(status(for: error))
                }
            })
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

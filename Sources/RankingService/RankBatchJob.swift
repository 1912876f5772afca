import GRPCCore
import GRPCServer
import RankingAPI
import RankingEngine
import RankingModel

/// One `RankBatch` call: ranks its users one at a time, in order, each under the shared rules, and
/// sends each result only once the stream's queue has drained to ``queueLimit`` bytes. The queue
/// drains only as the client reads (HTTP/2 flow control), so a slow or stalled reader stops the
/// ranking instead of growing server memory: per call the server holds the request, at most
/// `queueLimit` bytes plus one result, and the client's stream window.
///
/// Runs on the connection's event loop, one user per loop turn, so other calls on the loop
/// interleave with a long batch. Deadline: checked before each user.
final class RankBatchJob: @unchecked Sendable {
    /// Response bytes allowed to wait in the stream's queue before the next user is ranked.
    static let queueLimit = 64 * 1024

    private let users: [String]
    private let rules: RankRequest
    private let engine: RankingEngine
    private let context: ServerCallContext
    private let writer: any ServerStreamWriter
    /// Only touched on the stream's event loop (the writer's callbacks run there).
    private var index = 0

    init(
        users: [String], rules: RankRequest, engine: RankingEngine, context: ServerCallContext,
        writer: any ServerStreamWriter
    ) {
        self.users = users
        self.rules = rules
        self.engine = engine
        self.context = context
        self.writer = writer
    }

    /// Ranks and sends the next user, then waits for the queue to drain before the one after.
    func next() {
        guard writer.isActive else { return }
        guard index < users.count else { return writer.finish(.ok) }
        let remaining = context.remainingTime()?.nanoseconds
        if let remaining, remaining <= 0 {
            return writer.finish(
                GRPCStatus(.deadlineExceeded, "deadline exceeded after \(index) of \(users.count) users"))
        }
        let user = users[index]
        index += 1
        var request = rules
        request.userID = user
        let result: Result<RankResponse, GRPCStatus>
        do throws(RankError) {
            result = .success(try engine.rank(request, remainingNanoseconds: remaining))
        } catch {
            result = .failure(RankerService.status(for: error))
        }
        writer.send(RelatedCodec.encodeBatchResult(userID: user, result))
        writer.whenQueued(atMost: Self.queueLimit) { self.next() }
    }
}

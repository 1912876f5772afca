import Foundation
public import RankingModel
public import SnapshotLifecycle
public import UserEvents

/// Why a Rank call failed; the service maps each case to its gRPC status.
public enum RankError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidArgument(String)
    case unavailable(String)
    case deadlineExceeded(String)
    case internalError(String)

    public var description: String {
        switch self {
        case .invalidArgument(let message), .unavailable(let message), .deadlineExceeded(let message),
            .internalError(let message):
            message
        }
    }
}

/// Where one call's time went (for benchmarks and diagnostics; see ``RankingEngine/rankMeasured``).
public struct RankStageTimings: Sendable, Equatable {
    /// Parameters, validation, id lookups and the query vector.
    public var resolve: Duration = .zero
    /// Candidate retrieval (HNSW walk, exact scan, or popularity lists).
    public var retrieve: Duration = .zero
    /// Candidate set construction and re-ranking.
    public var rerank: Duration = .zero
    /// Building the response values (ids, names, explanations).
    public var describe: Duration = .zero
    /// Part of `resolve`: reading the user's recorded events and deriving session history, rotation,
    /// caps and purchases from them.
    public var events: Duration = .zero

    public init() {}
}

/// Engine settings that are not per snapshot.
public struct EngineOptions: Sendable {
    public var limits = RankLimits()
    /// With less than this much of the deadline left, serve a cheaper request (smaller beam and
    /// pool, MMR instead of DPP) and say so in `degraded`.
    public var degradeBelowNanoseconds: Int64 = 3_000_000
    public var degradedEfSearch = 32
    public var degradedPoolSize = 100

    public init() {}
}

/// The Rank pipeline: resolve the query (user, session, cold start, consent), retrieve candidates
/// under the filter, re-rank under the rules, and describe the result.
///
/// Thread-safe: the active snapshot is read once per call and held to the end, so a call never
/// mixes versions; working memory comes from a pool of ``RankScratch``.
public final class RankingEngine: Sendable {
    public let registry: SnapshotRegistry<ServingSnapshot>
    public let options: EngineOptions
    /// Recorded events (RecordEvents): session history, rotation, frequency caps, exclude-purchased.
    /// `nil`: none are kept, and those rules see no events.
    public let events: UserEventStore?
    private let scratchPool = RankScratchPool()

    public init(
        registry: SnapshotRegistry<ServingSnapshot>, options: EngineOptions = .init(), events: UserEventStore? = nil
    ) {
        self.registry = registry
        self.options = options
        self.events = events
    }

    /// Ranks items for one request.
    ///
    /// - Parameters:
    ///   - remainingNanoseconds: time left before the caller's deadline (`nil`: none).
    ///   - now: Unix seconds, for freshness boosts (default: the current time).
    /// - Throws: ``RankError``: `invalidArgument` naming the field, `unavailable` before the first
    ///   snapshot, `deadlineExceeded` when the budget is already spent.
    public func rank(
        _ request: RankRequest, remainingNanoseconds: Int64? = nil, now: Int64? = nil
    ) throws(RankError) -> RankResponse {
        try run(request, remainingNanoseconds: remainingNanoseconds, now: now, measure: false).response
    }

    /// ``rank(_:remainingNanoseconds:now:)`` that also reports where the time went (a few clock
    /// reads more; the same pipeline).
    public func rankMeasured(
        _ request: RankRequest, remainingNanoseconds: Int64? = nil, now: Int64? = nil
    ) throws(RankError) -> (RankResponse, RankStageTimings) {
        let measured = try run(request, remainingNanoseconds: remainingNanoseconds, now: now, measure: true)
        return (measured.response, measured.timings)
    }

    /// Items similar to `request.seedItemIDs` under the rest of `request` (Related): the same
    /// pipeline as Rank with the seeds as the query, excluded from the answer and named in
    /// explanations.
    ///
    /// - Throws: as ``rank(_:remainingNanoseconds:now:)``; no seed, or an unknown or removed seed,
    ///   is `invalidArgument` naming `seed_item_ids`.
    public func related(
        _ request: RankRequest, remainingNanoseconds: Int64? = nil, now: Int64? = nil
    ) throws(RankError) -> RankResponse {
        try relatedMeasured(request, remainingNanoseconds: remainingNanoseconds, now: now, measure: false).0
    }

    /// ``related(_:remainingNanoseconds:now:)`` that also reports where the time went.
    public func relatedMeasured(
        _ request: RankRequest, remainingNanoseconds: Int64? = nil, now: Int64? = nil, measure: Bool = true
    ) throws(RankError) -> (RankResponse, RankStageTimings) {
        guard !request.seedItemIDs.isEmpty else {
            throw .invalidArgument("seed_item_ids: at least one seed item is required")
        }
        let measured = try run(request, remainingNanoseconds: remainingNanoseconds, now: now, measure: measure)
        return (measured.response, measured.timings)
    }

    /// The one Rank pipeline behind both entry points: read the active snapshot once, borrow
    /// scratch, run the call.
    private func run(
        _ request: RankRequest, remainingNanoseconds: Int64?, now: Int64?, measure: Bool
    ) throws(RankError) -> (response: RankResponse, timings: RankStageTimings) {
        let now = now ?? Int64(Date().timeIntervalSince1970)
        guard let serving = registry.current() else {
            throw .unavailable("no snapshot is active yet")
        }
        // The live overlay is read wait-free for the whole call, so the call sees each update
        // entirely or not at all, and never waits for a writer.
        return try serving.overlay.read { (live) throws(RankError) in
            try scratchPool.withScratch { (scratch) throws(RankError) in
                var call = RankCall(
                    request: request, serving: serving, live: live, events: events, options: options,
                    scratch: scratch,
                    remainingNanoseconds: remainingNanoseconds, now: now)
                call.measure = measure
                let response = try call.run()
                return (response, call.timings)
            }
        }
    }
}

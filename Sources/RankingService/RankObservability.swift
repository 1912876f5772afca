import CoreMetrics
public import Logging
import RankingEngine
import RankingModel
import Synchronization
public import Tracing

/// What `Rank` records besides answering: metrics, a sampled access log, trace spans. All off by
/// default, and then the call path reads no clock (the engine's plain `rank` runs, not
/// `rankMeasured`) and touches no tracer.
public struct RankObservability: Sendable {
    /// Record stage timings, strategies, degraded calls and candidates through swift-metrics
    /// (bootstrap a backend before registering the service).
    public var recordsMetrics = false
    /// Write one logfmt access line for every `accessLogEvery`-th Rank call (1: each call); nil: none.
    public var accessLogEvery: Int?
    /// Where access lines go (the `access` label, at `info`).
    public var accessLogger: Logger?
    /// Spans for each call (a server span with one child per stage), parented by the caller's
    /// `traceparent` metadata when it sends one.
    public var tracer: (any Tracer)?

    public init(
        recordsMetrics: Bool = false, accessLogEvery: Int? = nil, accessLogger: Logger? = nil,
        tracer: (any Tracer)? = nil
    ) {
        self.recordsMetrics = recordsMetrics
        self.accessLogEvery = accessLogEvery
        self.accessLogger = accessLogger
        self.tracer = tracer
    }

    /// Whether any of it is on, so the call must be timed.
    var timesCalls: Bool { recordsMetrics || accessLogEvery != nil || tracer != nil }
}

/// The stages of a Rank call as the metrics label them.
enum RankStage: Int, CaseIterable {
    case decode, query, retrieve, rerank, describe, encode

    var label: String {
        switch self {
        case .decode: "decode"
        case .query: "query"
        case .retrieve: "retrieve"
        case .rerank: "rerank"
        case .describe: "describe"
        case .encode: "encode"
        }
    }
}

/// Rank's swift-metrics handles, created once at registration: recording is an atomic add on a
/// handle found by index (no lock, no dictionary, no allocation).
final class RankMetrics: Sendable {
    private let stages: [CoreMetrics.Timer]
    private let total: CoreMetrics.Timer
    private let strategies: [Counter]
    private let degraded: Counter
    private let candidates: Counter

    init() {
        stages = RankStage.allCases.map {
            CoreMetrics.Timer(label: "rankd_rank_stage_seconds", dimensions: [("stage", $0.label)])
        }
        total = CoreMetrics.Timer(label: "rankd_rank_seconds")
        strategies = RankResponse.Strategy.allCases.map {
            Counter(label: "rankd_rank_strategy_total", dimensions: [("strategy", $0.rawValue)])
        }
        degraded = Counter(label: "rankd_rank_degraded_total")
        candidates = Counter(label: "rankd_rank_candidates_considered_total")
    }

    /// One successful call: where its time went and how it was served.
    func record(_ timing: RankCallTiming, response: RankResponse) {
        stages[RankStage.decode.rawValue].recordNanoseconds(timing.decode)
        stages[RankStage.query.rawValue].recordNanoseconds(timing.engine.resolve.nanoseconds)
        stages[RankStage.retrieve.rawValue].recordNanoseconds(timing.engine.retrieve.nanoseconds)
        stages[RankStage.rerank.rawValue].recordNanoseconds(timing.engine.rerank.nanoseconds)
        stages[RankStage.describe.rawValue].recordNanoseconds(timing.engine.describe.nanoseconds)
        stages[RankStage.encode.rawValue].recordNanoseconds(timing.encode)
        total.recordNanoseconds(timing.total)
        if let index = RankResponse.Strategy.allCases.firstIndex(of: response.strategy) {
            strategies[index].increment()
        }
        if response.degraded { degraded.increment() }
        candidates.increment(by: Int64(response.candidatesConsidered))
    }
}

/// Where one Rank call's time went, in nanoseconds (the engine's part as its stage timings).
struct RankCallTiming {
    var decode: Int64 = 0
    var engine = RankStageTimings()
    /// When encoding started, from the start of the call.
    var encodeStart: Int64 = 0
    var encode: Int64 = 0
    var total: Int64 = 0
}

/// Picks every n-th call for the access log: one relaxed atomic add per call, no lock.
final class AccessLogSampler: Sendable {
    private let every: Int
    private let counter = Atomic<Int>(0)

    init(every: Int) { self.every = max(every, 1) }

    /// Whether this call is logged.
    func next() -> Bool {
        every == 1 || counter.wrappingAdd(1, ordering: .relaxed).oldValue % every == 0
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : product &+ attoseconds / 1_000_000_000
    }
}

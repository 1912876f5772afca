import Foundation
public import RankingModel
import Reranking
import Snapshot
public import SnapshotLifecycle
import VectorIndex

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
    private let scratchPool = RankScratchPool()

    public init(registry: SnapshotRegistry<ServingSnapshot>, options: EngineOptions = .init()) {
        self.registry = registry
        self.options = options
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
        let now = now ?? Int64(Date().timeIntervalSince1970)
        guard let serving = registry.current() else {
            throw .unavailable("no snapshot is active yet")
        }
        return try scratchPool.withScratch { (scratch) throws(RankError) -> RankResponse in
            var call = RankCall(
                request: request, serving: serving, options: options, scratch: scratch,
                remainingNanoseconds: remainingNanoseconds, now: now)
            return try call.run()
        }
    }

    /// ``rank(_:remainingNanoseconds:now:)`` that also reports where the time went.
    public func rankMeasured(
        _ request: RankRequest, remainingNanoseconds: Int64? = nil
    ) throws(RankError) -> (RankResponse, RankStageTimings) {
        let now = Int64(Date().timeIntervalSince1970)
        guard let serving = registry.current() else {
            throw .unavailable("no snapshot is active yet")
        }
        return try scratchPool.withScratch { (scratch) throws(RankError) -> (RankResponse, RankStageTimings) in
            var call = RankCall(
                request: request, serving: serving, options: options, scratch: scratch,
                remainingNanoseconds: remainingNanoseconds, now: now)
            call.measure = true
            let response = try call.run()
            return (response, call.timings)
        }
    }
}

/// One call's state, so the steps can share it without long parameter lists.
private struct RankCall {
    let request: RankRequest
    let serving: ServingSnapshot
    let options: EngineOptions
    let scratch: RankScratch
    let remainingNanoseconds: Int64?
    let now: Int64
    var snapshot: Snapshot { serving.snapshot }
    var response = RankResponse()
    var measure = false
    var timings = RankStageTimings()
    private var lap = ContinuousClock.Instant.now

    /// Adds the time since the last lap to `stage` (only when measuring: clock reads are cheap
    /// but not free).
    private mutating func record(_ stage: WritableKeyPath<RankStageTimings, Duration>) {
        guard measure else { return }
        let now = ContinuousClock.now
        timings[keyPath: stage] += now - lap
        lap = now
    }

    init(
        request: RankRequest, serving: ServingSnapshot, options: EngineOptions, scratch: RankScratch,
        remainingNanoseconds: Int64?, now: Int64
    ) {
        self.request = request
        self.serving = serving
        self.options = options
        self.scratch = scratch
        self.remainingNanoseconds = remainingNanoseconds
        self.now = now
    }

    mutating func run() throws(RankError) -> RankResponse {
        if measure { lap = .now }
        let personalised = request.consent == .full
        // Consent NONE: the user id is not used at all, not even to pick an experiment arm.
        let parameters: RankingParameters
        do {
            parameters = try serving.config.parameters(
                userID: personalised ? request.userID : "", forcedArm: request.experimentArm)
        } catch {
            throw .invalidArgument(error.description)
        }
        let k = request.k == 0 ? parameters.k : request.k
        do {
            try request.validate(limits: options.limits, effectiveK: k)
        } catch {
            throw .invalidArgument(error.message)
        }
        if let remaining = remainingNanoseconds, remaining <= 0 {
            throw .deadlineExceeded("deadline expired before ranking started")
        }

        var plan = Plan(request: request, parameters: parameters, k: k, itemCount: snapshot.itemIds.count)
        if let remaining = remainingNanoseconds, remaining < options.degradeBelowNanoseconds {
            plan.degrade(options: options, remaining: remaining)
            response.degraded = true
            response.degradedReason =
                "only \(remaining / 1000) µs of the deadline left: smaller search, \(plan.method == .dpp ? "DPP" : "MMR/none")"
        }
        response.snapshotVersion = serving.version
        response.experiment = parameters.experiment
        response.experimentArm = parameters.arm

        let userRow = personalised && !request.userID.isEmpty ? snapshot.userIds.row(for: request.userID) : nil
        var sessionRows: [Int32] = []
        if personalised {
            for id in request.recentItemIDs {
                if let row = snapshot.itemIds.row(for: id) {
                    sessionRows.append(Int32(row))
                } else {
                    response.unknownItemIDs.append(id)
                }
            }
        }
        let strategy: RankResponse.Strategy =
            if !personalised { .nonPersonalized } else if parameters.holdout {
                .popular
            } else if userRow != nil && !sessionRows.isEmpty { .blended } else if userRow != nil {
                .personalized
            } else if !sessionRows.isEmpty { .session } else { .popular }
        response.strategy = strategy
        let usesVectors = strategy != .popular && strategy != .nonPersonalized
        if usesVectors {
            buildQuery(userRow: userRow, sessionRows: sessionRows, parameters: parameters)
        }

        record(\.resolve)
        try ItemFilter.with(request.filter, snapshot: snapshot, scratch: scratch) { (filter) throws(RankError) in
            if usesVectors {
                try retrieve(filter: filter, plan: plan)
            } else {
                popularCandidates(filter: filter, pool: plan.pool)
            }
            response.candidatesConsidered = scratch.results.count
            record(\.retrieve)
            try rerank(filter: filter, plan: plan, usesVectors: usesVectors)
        }
        return response
    }

    // MARK: Query vector

    /// The user's embedding, the session's (a recency-weighted mean of the recent items), or both
    /// blended: `|u| · ((1−w)·û + w·ŝ)`, so the blend keeps the user vector's scale.
    private func buildQuery(userRow: Int?, sessionRows: [Int32], parameters: RankingParameters) {
        let dimension = snapshot.dimension
        scratch.query.removeAll(keepingCapacity: true)
        scratch.query.append(contentsOf: repeatElement(0, count: dimension))
        scratch.vector.removeAll(keepingCapacity: true)
        scratch.vector.append(contentsOf: repeatElement(0, count: dimension))
        guard !sessionRows.isEmpty else {
            scratch.query.withUnsafeMutableBufferPointer { snapshot.userVectors.decode(row: userRow!, into: $0) }
            return
        }
        // Session mean, newest first: weights 1, decay, decay², …
        var weight: Float = 1
        for row in sessionRows {
            scratch.vector.withUnsafeMutableBufferPointer { snapshot.itemVectors.decode(row: Int(row), into: $0) }
            let norm = Self.norm(scratch.vector)
            if norm > 0 {
                for j in 0..<dimension { scratch.query[j] += weight * scratch.vector[j] / norm }
            }
            weight *= parameters.sessionDecay
        }
        let sessionNorm = Self.norm(scratch.query)
        if sessionNorm > 0 {
            for j in 0..<dimension { scratch.query[j] /= sessionNorm }
        }
        guard let userRow else { return }
        scratch.vector.withUnsafeMutableBufferPointer { snapshot.userVectors.decode(row: userRow, into: $0) }
        let userNorm = Self.norm(scratch.vector)
        guard userNorm > 0 else { return }
        let w = parameters.blendWeight
        for j in 0..<dimension {
            scratch.query[j] = userNorm * ((1 - w) * scratch.vector[j] / userNorm + w * scratch.query[j])
        }
    }

    private static func norm(_ vector: [Float]) -> Float {
        var sum: Float = 0
        for value in vector { sum += value * value }
        return sum.squareRoot()
    }

    // MARK: Retrieval

    private func retrieve(filter: ItemFilter, plan: Plan) throws(RankError) {
        let retrieval = FilteredRetrieval(serving: serving, scratch: scratch, pool: plan.pool, ef: plan.efSearch)
        do {
            try retrieval.run(filter: filter)
        } catch {
            throw .internalError("retrieval failed: \(error)")
        }
    }

    /// Cold start, holdout and consent NONE: the most popular items that pass the filter, with
    /// their popularity as relevance.
    private func popularCandidates(filter: ItemFilter, pool: Int) {
        let popularity = snapshot.popularity
        let scores = snapshot.attributes.popularity
        scratch.results.removeAll(keepingCapacity: true)
        guard pool > 0 else { return }
        if filter.restrictsCategories {
            // Merge the included categories' own popularity lists instead of scanning everything.
            scratch.popularRows.removeAll(keepingCapacity: true)
            for name in request.filter.includeCategories {
                guard let category = snapshot.categories.row(for: name), category < popularity.categoryCount else {
                    continue
                }
                var taken = 0
                for row in popularity.mostPopular(inCategory: category) where taken < pool {
                    if filter.accepts(Int32(row)) {
                        scratch.popularRows.append((Int32(row), scores[Int(row)]))
                        taken += 1
                    }
                }
            }
            scratch.popularRows.sort {
                $0.popularity != $1.popularity ? $0.popularity > $1.popularity : $0.row < $1.row
            }
            for entry in scratch.popularRows.prefix(pool) {
                scratch.results.append(SearchResult(row: entry.row, score: entry.popularity))
            }
        } else {
            for row in popularity.global.buffer {
                let row = Int32(row)
                if filter.accepts(row) {
                    scratch.results.append(SearchResult(row: row, score: scores[Int(row)]))
                    if scratch.results.count == pool { break }
                }
            }
        }
    }

    // MARK: Re-ranking

    private mutating func rerank(filter: ItemFilter, plan: Plan, usesVectors: Bool) throws(RankError) {
        let attributes = snapshot.attributes
        let dimension = snapshot.dimension
        var set = scratch.candidateSet(dimension: dimension, capacity: scratch.results.count + request.pins.count)
        defer { scratch.candidates = set }
        scratch.vector.removeAll(keepingCapacity: true)
        scratch.vector.append(contentsOf: repeatElement(0, count: dimension))
        func append(row: Int32, relevance: Float, role: CandidateRole) {
            scratch.vector.withUnsafeMutableBufferPointer { snapshot.itemVectors.decode(row: Int(row), into: $0) }
            let index = Int(row)
            let item = Reranking.ItemAttributes(
                row: row, category: Int32(truncatingIfNeeded: attributes.category[index]),
                brand: Int32(truncatingIfNeeded: attributes.brand[index]), inStock: attributes.inStock[index] != 0,
                createdAt: attributes.createdAt[index], tags: attributes.tags[index])
            scratch.vector.withUnsafeBufferPointer { set.append(item, relevance: relevance, vector: $0, role: role) }
        }
        for result in scratch.results {
            append(row: result.row, relevance: result.score, role: .retrieved)
        }

        var pins: [Reranking.Pin] = []
        for pin in request.pins {
            guard let found = snapshot.itemIds.row(for: pin.itemID) else {
                response.unknownItemIDs.append(pin.itemID)
                response.droppedPins.append(.init(itemID: pin.itemID, position: pin.position, reason: "unknown item"))
                continue
            }
            let row = Int32(found)
            // Request filters are hard rules for pins too.
            if let reason = filter.rejection(row) {
                response.droppedPins.append(.init(itemID: pin.itemID, position: pin.position, reason: reason))
                continue
            }
            if !scratch.results.contains(where: { $0.row == row }) {
                let relevance = usesVectors ? pinRelevance(row: row) : attributes.popularity[Int(row)]
                append(row: row, relevance: relevance.isFinite ? relevance : 0, role: .pinOnly)
            }
            pins.append(Reranking.Pin(row: row, position: pin.position))
        }

        let rules = RerankRules(
            excludedRows: scratch.excludedRows, excludeOutOfStock: request.filter.inStockOnly,
            deniedCategories: request.filter.excludeCategories.compactMap { snapshot.categories.row(for: $0) }.map {
                Int32($0)
            },
            deniedBrands: request.filter.excludeBrands.compactMap { snapshot.brands.row(for: $0) }.map { Int32($0) },
            maxPerCategory: request.diversity.maxPerCategory > 0 ? request.diversity.maxPerCategory : nil,
            maxPerBrand: request.diversity.maxPerBrand > 0 ? request.diversity.maxPerBrand : nil,
            spread: request.diversity.spreadWindow > 0
                ? SpreadRule(
                    maxPerWindow: request.diversity.spreadMaxPerCategory, window: request.diversity.spreadWindow)
                : nil,
            boosts: boosts(), pins: pins)
        let method: DiversityMethod =
            switch plan.method {
            case .none: .none
            case .mmr: .mmr(lambda: plan.tradeoff)
            // The greedy DPP conditions on at most `dimension` items before d² collapses; longer
            // lists use the sliding window of that length.
            case .dpp: .dpp(theta: plan.tradeoff, window: plan.k > dimension ? dimension : nil)
            }
        let rerankRequest = RerankRequest(k: plan.k, method: method, rules: rules, now: now)
        let context = request.explain ? explanationContext() : nil
        let outcome: RerankOutcome
        do {
            outcome = try scratch.rerank.rerank(set, rerankRequest, explain: context)
        } catch {
            throw .invalidArgument(error.description)
        }
        record(\.rerank)
        describe(outcome: outcome, set: set, plan: plan)
        record(\.describe)
    }

    private func pinRelevance(row: Int32) -> Float {
        var dot: Float = 0
        scratch.vector.withUnsafeMutableBufferPointer { snapshot.itemVectors.decode(row: Int(row), into: $0) }
        for j in 0..<scratch.query.count { dot += scratch.query[j] * scratch.vector[j] }
        return dot
    }

    /// API boosts → re-ranker boosts: names become dictionary ids or tag bits; unknown names
    /// match nothing, so they are dropped. Multiply and add become two rules (multiplies first).
    private func boosts() -> [Reranking.Boost] {
        var boosts: [Reranking.Boost] = []
        for boost in request.boosts {
            let match: Reranking.Boost.Match
            switch boost.target {
            case .category(let name):
                guard let id = snapshot.categories.row(for: name) else { continue }
                match = .category(Int32(id))
            case .brand(let name):
                guard let id = snapshot.brands.row(for: name) else { continue }
                match = .brand(Int32(id))
            case .tag(let name):
                guard let bit = snapshot.tags.row(for: name), bit < 64 else { continue }
                match = .anyTag(1 << UInt64(bit))
            case .itemID(let id):
                guard let row = snapshot.itemIds.row(for: id) else { continue }
                match = .item(row: Int32(row))
            case .freshWithinDays(let days):
                match = .createdWithin(days: days)
            }
            if let factor = boost.multiply { boosts.append(.init(match, .multiply(factor))) }
            if boost.add != 0 { boosts.append(.init(match, .add(boost.add))) }
        }
        return boosts
    }

    private func explanationContext() -> ExplanationContext {
        let origin: QueryOrigin =
            switch response.strategy {
            case .session, .blended: .recentlyViewed
            case .personalized: .userProfile
            default: .popularity
            }
        let snapshot = self.snapshot
        return ExplanationContext(
            origin: origin, categoryName: { snapshot.categories.id(at: Int($0)) },
            brandName: { snapshot.brands.id(at: Int($0)) })
    }

    // MARK: Response

    private mutating func describe(outcome: RerankOutcome, set: CandidateSet, plan: Plan) {
        let attributes = snapshot.attributes
        let explanations = scratch.rerank.explanations
        for (position, ranked) in scratch.rerank.ranked.enumerated() {
            let row = Int(ranked.row)
            var item = RankResponse.RankedItem(
                itemID: snapshot.itemIds.id(at: row) ?? "", score: ranked.score, position: position,
                category: name(snapshot.categories, attributes.category[row]),
                brand: name(snapshot.brands, attributes.brand[row]))
            if position < explanations.count {
                item.explanation = explanation(explanations[position])
            }
            response.items.append(item)
        }
        for dropped in scratch.rerank.droppedPins {
            let id = snapshot.itemIds.id(at: Int(dropped.pin.row)) ?? ""
            let original = request.pins.first { $0.itemID == id }
            response.droppedPins.append(
                .init(
                    itemID: id, position: original?.position ?? dropped.pin.position, reason: describe(dropped.reason)))
        }
        response.fewerThanK = response.items.count < plan.k
    }

    private func name(_ table: IdTable, _ id: UInt32) -> String {
        id == ItemAttributes.none ? "" : table.id(at: Int(id)) ?? ""
    }

    private func explanation(_ source: RerankExplanation) -> RankResponse.Explanation {
        var result = RankResponse.Explanation()
        result.baseRelevance = source.baseRelevance
        result.boostedRelevance = source.boostedRelevance
        result.appliedBoosts = source.appliedBoosts.map { describe($0.boost) }
        switch source.diversity {
        case .none: break
        case .mmr(let penalty, _, _): result.diversityPenalty = penalty
        case .dpp(let gain, _): result.dppGain = gain
        }
        switch source.placement {
        case .pinned: result.rule = "pinned"
        case .relevance:
            result.rule =
                response.strategy == .popular || response.strategy == .nonPersonalized ? "popularity" : "relevance"
        case .diversity:
            result.rule = plan(for: source)
        case .rule(let rule, let blockedRow):
            result.rule = plan(for: source)
            let blocked = snapshot.itemIds.id(at: Int(blockedRow)) ?? "another item"
            result.constraints = ["\(describe(rule)) (held back \(blocked))"]
        }
        result.reason = source.reason
        return result
    }

    private func plan(for source: RerankExplanation) -> String {
        switch source.diversity {
        case .mmr: "mmr"
        case .dpp: "dpp"
        case .none: "relevance"
        }
    }

    private func describe(_ boost: Reranking.Boost) -> String {
        let target: String =
            switch boost.match {
            case .category(let id): "category \(name(snapshot.categories, UInt32(bitPattern: id)))"
            case .brand(let id): "brand \(name(snapshot.brands, UInt32(bitPattern: id)))"
            case .anyTag(let bits): "tag \(snapshot.tags.id(at: bits.trailingZeroBitCount) ?? "?")"
            case .item(let row): "item \(snapshot.itemIds.id(at: Int(row)) ?? "?")"
            case .createdWithin(let days): "created within \(days) days"
            }
        switch boost.effect {
        case .multiply(let factor): return "\(target) ×\(factor)"
        case .add(let addend): return "\(target) \(addend >= 0 ? "+" : "")\(addend)"
        }
    }

    private func describe(_ rule: BlockingRule) -> String {
        switch rule {
        case .categoryCap(let category, let limit):
            "cap of \(limit) reached for \(name(snapshot.categories, UInt32(bitPattern: category)))"
        case .brandCap(let brand, let limit):
            "cap of \(limit) reached for brand \(name(snapshot.brands, UInt32(bitPattern: brand)))"
        case .spread(let category, let maxPerWindow, let window):
            "at most \(maxPerWindow) of \(name(snapshot.categories, UInt32(bitPattern: category))) in \(window) positions"
        }
    }

    private func describe(_ reason: Reranking.DroppedPin.Reason) -> String {
        switch reason {
        case .excluded(.excludedItem): "excluded by filter.exclude_item_ids"
        case .excluded(.outOfStock): "out of stock"
        case .excluded(.deniedCategory): "category excluded by filter"
        case .excluded(.deniedBrand): "brand excluded by filter"
        case .itemNotSupplied: "item not available"
        case .positionOutOfRange: "position is not below k"
        case .positionTaken: "position already pinned"
        case .duplicateItem: "item already pinned"
        case .conflictsWith(let rule): "conflicts with \(describe(rule))"
        case .listEndedBeforePosition: "too few eligible items to reach the position"
        }
    }
}

/// The effective knobs of one call after defaults, experiment overrides, request fields and
/// deadline degradation.
private struct Plan {
    var k: Int
    var pool: Int
    var efSearch: Int
    var method: RankingConfig.Method
    var tradeoff: Float

    init(request: RankRequest, parameters: RankingParameters, k: Int, itemCount: Int) {
        self.k = k
        let wanted = request.candidatePool > 0 ? request.candidatePool : max(parameters.poolSize, k)
        pool = min(wanted, itemCount)
        efSearch = parameters.efSearch
        method =
            switch request.diversity.method {
            case .unspecified: parameters.method
            case .none: .none
            case .mmr: .mmr
            case .dpp: .dpp
            }
        tradeoff = request.diversity.tradeoff ?? parameters.tradeoff
    }

    mutating func degrade(options: EngineOptions, remaining: Int64) {
        efSearch = min(efSearch, options.degradedEfSearch)
        pool = max(min(pool, options.degradedPoolSize), min(k, pool))
        if method == .dpp { method = .mmr }
    }
}

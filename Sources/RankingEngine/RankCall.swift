import LiveState
import RankingModel
import Snapshot
import UserEvents

/// One call's state, so the steps can share it without long parameter lists.
struct RankCall {
    /// The request as given, except that a Related call's seeds are appended to its excluded items
    /// once it has been validated (seeds are never returned).
    private(set) var request: RankRequest
    let serving: ServingSnapshot
    /// The live overlay's columns for this call (valid until it returns).
    let live: OverlayColumns
    let events: UserEventStore?
    let options: EngineOptions
    let scratch: RankScratch
    let remainingNanoseconds: Int64?
    let now: Int64
    var snapshot: Snapshot { serving.snapshot }
    var response = RankResponse()
    /// Related: the seed items' rows, in request order (empty for Rank).
    var seedRows: [Int32] = []
    var measure = false
    var timings = RankStageTimings()
    private var lap = ContinuousClock.Instant.now

    /// Adds the time since the last lap to `stage` (only when measuring: clock reads are cheap
    /// but not free).
    mutating func record(_ stage: WritableKeyPath<RankStageTimings, Duration>) {
        guard measure else { return }
        let now = ContinuousClock.now
        timings[keyPath: stage] += now - lap
        lap = now
    }

    init(
        request: RankRequest, serving: ServingSnapshot, live: OverlayColumns, events: UserEventStore?,
        options: EngineOptions, scratch: RankScratch, remainingNanoseconds: Int64?, now: Int64
    ) {
        self.request = request
        self.serving = serving
        self.live = live
        self.events = events
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

        // Related: seeds are the query (an unknown or removed seed is an error: the page asked about
        // an item we cannot describe), and never part of the answer.
        let related = !request.seedItemIDs.isEmpty
        if related {
            seedRows = try resolveSeeds()
            request.filter.excludeItemIDs.append(contentsOf: request.seedItemIDs)
        }
        // A deleted user is an unknown user; a removed item is an unknown item (live overlay).
        let userRow =
            personalised && !request.userID.isEmpty
            ? snapshot.userIds.row(for: request.userID).flatMap { live.isUserDeleted($0) ? nil : $0 } : nil
        // Consent NONE reads no events (readEvents leaves the view empty). Related reads them too:
        // rotation, caps and exclude-purchased apply to a product page as to a home page.
        let eventsStarted = measure ? ContinuousClock.now : lap
        readEvents(personalised: personalised)
        if related {
            // The seeds are the session (validation refuses recent_item_ids on Related; recorded history
            // is not what the page asks about).
            scratch.sessionRows.removeAll(keepingCapacity: true)
            scratch.sessionWeights.removeAll(keepingCapacity: true)
            scratch.sessionRows.append(contentsOf: seedRows)
            response.sessionSource = .none
        } else {
            resolveSession(personalised: personalised, historySeconds: serving.config.eventHistorySeconds)
        }
        applyEventRules()
        if measure { timings.events = ContinuousClock.now - eventsStarted }
        let sessionRows = scratch.sessionRows
        let strategy: RankResponse.Strategy =
            if related { .related } else if !personalised { .nonPersonalized } else if parameters.holdout {
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
        try ItemFilter.with(
            request.filter, snapshot: snapshot, live: live, scratch: scratch, eventRows: scratch.eventExcludedRows,
            eventCategories: scratch.eventExcludedCategories
        ) {
            (filter) throws(RankError) in
            if usesVectors {
                try retrieve(filter: filter, plan: plan)
            } else {
                popularCandidates(filter: filter, pool: plan.pool)
            }
            response.candidatesConsidered = scratch.results.count
            record(\.retrieve)
            try rerank(filter: filter, plan: plan, usesVectors: usesVectors)
        }
        if request.explain { describeEventExclusions() }
        return response
    }
}

/// The effective knobs of one call after defaults, experiment overrides, request fields and
/// deadline degradation.
struct Plan {
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

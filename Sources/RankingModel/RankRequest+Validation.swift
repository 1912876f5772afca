/// Bounds on a Rank request; the defaults are the documented API limits.
public struct RankLimits: Sendable, Equatable {
    public var maxK = 1000
    public var maxCandidatePool = 5000
    public var maxRecentItems = 100
    public var maxUserIDBytes = 256
    public var maxIDBytes = 256
    public var maxListEntries = 1000
    public var maxContextEntries = 32
    /// Related: seed items per request.
    public var maxSeedItems = 100
    public var maxFrequencyCaps = 16
    /// The longest rotation, cap or exclude-purchased window (30 days).
    public static let maxEventWindowSeconds = 30 * 86_400

    public init() {}
}

extension RankRequest {
    /// Checks every field against `limits` and against each other. `k` and `candidatePool` may
    /// be 0 ("use the default"); `effectiveK` is what 0 resolves to, used to check pins.
    ///
    /// - Throws: ``RankRequestError`` whose message names the first offending field (proto names,
    ///   e.g. `diversity.tradeoff`) and the allowed range; the service answers `INVALID_ARGUMENT`.
    public func validate(limits: RankLimits = .init(), effectiveK: Int) throws(RankRequestError) {
        func invalid(_ message: String) -> RankRequestError { RankRequestError(message) }
        func checkIDs(_ ids: [String], _ field: String) throws(RankRequestError) {
            guard ids.count <= limits.maxListEntries else {
                throw invalid("\(field): at most \(limits.maxListEntries) entries, got \(ids.count)")
            }
            for (index, id) in ids.enumerated() {
                if id.isEmpty { throw invalid("\(field)[\(index)]: must not be empty") }
                if id.utf8.count > limits.maxIDBytes {
                    throw invalid("\(field)[\(index)]: longer than \(limits.maxIDBytes) bytes")
                }
            }
        }
        func checkDisjoint(_ include: [String], _ exclude: [String], _ name: String) throws(RankRequestError) {
            if let both = include.first(where: { exclude.contains($0) }) {
                throw invalid("filter: '\(both)' is in both include_\(name) and exclude_\(name)")
            }
        }

        if userID.utf8.count > limits.maxUserIDBytes {
            throw invalid("user_id: longer than \(limits.maxUserIDBytes) bytes")
        }
        guard (0...limits.maxK).contains(k) else {
            throw invalid("k: must be 1...\(limits.maxK) (0 = default), got \(k)")
        }
        guard (0...limits.maxCandidatePool).contains(candidatePool) else {
            throw invalid(
                "candidate_pool: must be at most \(limits.maxCandidatePool) (0 = default), got \(candidatePool)")
        }
        if candidatePool > 0 && candidatePool < effectiveK {
            throw invalid("candidate_pool: \(candidatePool) is smaller than k = \(effectiveK)")
        }
        guard recentItemIDs.count <= limits.maxRecentItems else {
            throw invalid("recent_item_ids: at most \(limits.maxRecentItems) entries, got \(recentItemIDs.count)")
        }
        try checkIDs(recentItemIDs, "recent_item_ids")
        guard seedItemIDs.count <= limits.maxSeedItems else {
            throw invalid("seed_item_ids: at most \(limits.maxSeedItems) entries, got \(seedItemIDs.count)")
        }
        try checkIDs(seedItemIDs, "seed_item_ids")
        if !seedItemIDs.isEmpty {
            if Set(seedItemIDs).count != seedItemIDs.count {
                throw invalid("seed_item_ids: duplicate ids")
            }
            if !recentItemIDs.isEmpty {
                throw invalid("rules.recent_item_ids: must be empty for Related (the seeds are the session)")
            }
        }

        try checkIDs(filter.includeCategories, "filter.include_categories")
        try checkIDs(filter.excludeCategories, "filter.exclude_categories")
        try checkIDs(filter.includeBrands, "filter.include_brands")
        try checkIDs(filter.excludeBrands, "filter.exclude_brands")
        try checkIDs(filter.tagsAny, "filter.tags_any")
        try checkIDs(filter.excludeItemIDs, "filter.exclude_item_ids")
        try checkDisjoint(filter.includeCategories, filter.excludeCategories, "categories")
        try checkDisjoint(filter.includeBrands, filter.excludeBrands, "brands")
        for (name, value) in [("filter.min_price", filter.minPrice), ("filter.max_price", filter.maxPrice)] {
            if let value, !value.isFinite || value < 0 {
                throw invalid("\(name): must be a finite number ≥ 0, got \(value)")
            }
        }
        if let low = filter.minPrice, let high = filter.maxPrice, low > high {
            throw invalid("filter: min_price \(low) is greater than max_price \(high)")
        }

        if let tradeoff = diversity.tradeoff, !(tradeoff >= 0 && tradeoff <= 1) {
            throw invalid("diversity.tradeoff: must be in [0, 1], got \(tradeoff)")
        }
        if (diversity.spreadWindow == 0) != (diversity.spreadMaxPerCategory == 0) {
            throw invalid("diversity: spread_window and spread_max_per_category must be set together")
        }
        if diversity.spreadWindow > 0 && diversity.spreadMaxPerCategory >= diversity.spreadWindow {
            throw invalid(
                "diversity.spread_max_per_category: \(diversity.spreadMaxPerCategory) must be smaller than spread_window \(diversity.spreadWindow)"
            )
        }
        if diversity.spreadWindow > limits.maxK {
            throw invalid("diversity.spread_window: at most \(limits.maxK), got \(diversity.spreadWindow)")
        }

        guard boosts.count <= limits.maxListEntries else {
            throw invalid("boosts: at most \(limits.maxListEntries) entries, got \(boosts.count)")
        }
        for (index, boost) in boosts.enumerated() {
            if let multiply = boost.multiply, !(multiply.isFinite && multiply > 0) {
                throw invalid("boosts[\(index)].multiply: must be a finite number > 0, got \(multiply)")
            }
            if !boost.add.isFinite { throw invalid("boosts[\(index)].add: must be finite") }
            switch boost.target {
            case .category(let name), .brand(let name), .tag(let name), .itemID(let name):
                if name.isEmpty { throw invalid("boosts[\(index)]: target name must not be empty") }
            case .freshWithinDays(let days):
                if days <= 0 { throw invalid("boosts[\(index)].fresh_within_days: must be > 0") }
            }
        }

        guard pins.count <= effectiveK else {
            throw invalid("pins: \(pins.count) pins for k = \(effectiveK)")
        }
        var positions = Set<Int>()
        var pinnedIDs = Set<String>()
        for (index, pin) in pins.enumerated() {
            if pin.itemID.isEmpty { throw invalid("pins[\(index)].item_id: must not be empty") }
            guard pin.position < effectiveK else {
                throw invalid("pins[\(index)].position: \(pin.position) is not below k = \(effectiveK)")
            }
            guard positions.insert(pin.position).inserted else {
                throw invalid("pins[\(index)].position: position \(pin.position) is pinned twice")
            }
            guard pinnedIDs.insert(pin.itemID).inserted else {
                throw invalid("pins[\(index)].item_id: '\(pin.itemID)' is pinned twice")
            }
        }
        if let arm = experimentArm, arm.utf8.count > limits.maxIDBytes {
            throw invalid("experiment_arm: longer than \(limits.maxIDBytes) bytes")
        }
        guard context.count <= limits.maxContextEntries else {
            throw invalid("context: at most \(limits.maxContextEntries) entries, got \(context.count)")
        }
        try validateEventRules(limits: limits)
    }

    /// Rotation, frequency caps and exclude-purchased (the rules that read recorded events).
    func validateEventRules(limits: RankLimits) throws(RankRequestError) {
        let maxWindow = RankLimits.maxEventWindowSeconds
        if filter.excludePurchasedWithinSeconds < 0 || filter.excludePurchasedWithinSeconds > maxWindow {
            throw RankRequestError(
                "filter.exclude_purchased_within_seconds: at most \(maxWindow) (30 days), got \(filter.excludePurchasedWithinSeconds)"
            )
        }
        if let rotation {
            if let rate = rotation.rate, !(rate >= 0 && rate <= 1) {
                throw RankRequestError("rotation.rate: must be in [0, 1], got \(rate)")
            }
            guard (0...maxWindow).contains(rotation.windowSeconds) else {
                throw RankRequestError(
                    "rotation.window_seconds: at most \(maxWindow) (30 days), got \(rotation.windowSeconds)")
            }
        }
        guard frequencyCaps.count <= limits.maxFrequencyCaps else {
            throw RankRequestError(
                "frequency_caps: at most \(limits.maxFrequencyCaps) entries, got \(frequencyCaps.count)")
        }
        for (index, cap) in frequencyCaps.enumerated() {
            guard cap.maxImpressions >= 1 else {
                throw RankRequestError("frequency_caps[\(index)].max_impressions: must be at least 1")
            }
            guard (1...maxWindow).contains(cap.windowSeconds) else {
                throw RankRequestError(
                    "frequency_caps[\(index)].window_seconds: must be 1...\(maxWindow) (30 days), got \(cap.windowSeconds)"
                )
            }
        }
    }
}

/// A request field that is out of range or contradicts another; the message names the field.
public struct RankRequestError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// `ranking.v1.RankRequest` as a Swift value. Field meanings are documented in
/// `Protos/ranking/v1/ranker.proto`; zero values mean "the default" exactly as there.
public struct RankRequest: Sendable, Equatable {
    public var userID: String = ""
    /// 0: the default k.
    public var k: Int = 0
    /// Newest first.
    public var recentItemIDs: [String] = []
    /// 0: the default pool size.
    public var candidatePool: Int = 0
    public var filter = Filter()
    public var diversity = Diversity()
    public var boosts: [Boost] = []
    public var pins: [Pin] = []
    public var explain = false
    public var consent: Consent = .full
    /// QA override of the experiment arm; `nil` for the hash assignment.
    public var experimentArm: String?
    public var context: [String: String] = [:]
    /// Related only (`ranking.v1.RelatedRequest.seed_item_ids`): the items to find similar items
    /// to. Empty for Rank. Seeds form the query, are excluded from the result, and name the nearest
    /// seed in explanations.
    public var seedItemIDs: [String] = []
    /// Rotation of recently shown items; `nil`: the snapshot config's.
    public var rotation: Rotation?
    /// Impression caps over the recorded events; empty: none.
    public var frequencyCaps: [FrequencyCap] = []
    /// Do not fall back to recorded interactions when `recentItemIDs` is empty.
    public var ignoreEventHistory = false

    public init() {}

    /// `ranking.v1.Rotation`: `rate` nil keeps the configured rate, `windowSeconds` 0 the configured window.
    public struct Rotation: Sendable, Equatable {
        public var rate: Float?
        public var windowSeconds: Int

        public init(rate: Float? = nil, windowSeconds: Int = 0) {
            self.rate = rate
            self.windowSeconds = windowSeconds
        }
    }

    /// `ranking.v1.FrequencyCap`.
    public struct FrequencyCap: Sendable, Equatable {
        public enum Scope: Sendable, Equatable { case item, category }
        public var maxImpressions: Int
        public var windowSeconds: Int
        public var scope: Scope

        public init(maxImpressions: Int, windowSeconds: Int, scope: Scope = .item) {
            self.maxImpressions = maxImpressions
            self.windowSeconds = windowSeconds
            self.scope = scope
        }
    }

    public struct Filter: Sendable, Equatable {
        public var includeCategories: [String] = []
        public var excludeCategories: [String] = []
        public var includeBrands: [String] = []
        public var excludeBrands: [String] = []
        public var inStockOnly = false
        public var minPrice: Double?
        public var maxPrice: Double?
        public var tagsAny: [String] = []
        public var excludeItemIDs: [String] = []
        /// Leave out items the user bought (recorded purchases) within this many seconds; 0: off.
        /// Resolved from the event state, not from the catalogue, so ``isEmpty`` does not count it.
        public var excludePurchasedWithinSeconds = 0

        public init() {}

        /// Whether the filter restricts anything (`excludePurchasedWithinSeconds` aside).
        public var isEmpty: Bool {
            includeCategories.isEmpty && excludeCategories.isEmpty && includeBrands.isEmpty && excludeBrands.isEmpty
                && !inStockOnly && minPrice == nil && maxPrice == nil && tagsAny.isEmpty && excludeItemIDs.isEmpty
        }
    }

    public enum DiversityMethod: String, Sendable, Equatable, CaseIterable {
        case unspecified, none, mmr, dpp
    }

    public struct Diversity: Sendable, Equatable {
        public var method: DiversityMethod = .unspecified
        public var tradeoff: Float?
        public var maxPerCategory = 0
        public var maxPerBrand = 0
        public var spreadWindow = 0
        public var spreadMaxPerCategory = 0

        public init() {}
    }

    public struct Boost: Sendable, Equatable {
        public enum Target: Sendable, Equatable {
            case category(String)
            case brand(String)
            case tag(String)
            case itemID(String)
            case freshWithinDays(Int)
        }

        public var target: Target
        public var multiply: Float?
        public var add: Float

        public init(target: Target, multiply: Float? = nil, add: Float = 0) {
            self.target = target
            self.multiply = multiply
            self.add = add
        }
    }

    public struct Pin: Sendable, Equatable {
        public var itemID: String
        public var position: Int

        public init(itemID: String, position: Int) {
            self.itemID = itemID
            self.position = position
        }
    }

    public enum Consent: Sendable, Equatable {
        case full, none
    }
}

/// `ranking.v1.RankResponse` as a Swift value.
public struct RankResponse: Sendable, Equatable {
    public var items: [RankedItem] = []
    public var snapshotVersion = ""
    public var strategy: Strategy = .unspecified
    public var experiment = ""
    public var experimentArm = ""
    public var degraded = false
    public var degradedReason = ""
    public var fewerThanK = false
    public var droppedPins: [DroppedPin] = []
    public var unknownItemIDs: [String] = []
    public var candidatesConsidered = 0
    public var sessionSource: SessionSource = .unspecified
    /// With explain: what the recorded events kept out.
    public var eventExclusions: [EventExclusion] = []

    public init() {}

    /// Where the session signals came from.
    public enum SessionSource: String, Sendable, Equatable, CaseIterable {
        case unspecified, none, request, eventHistory
    }

    /// An item or category that event state kept out, and why.
    public struct EventExclusion: Sendable, Equatable {
        public var itemID: String
        public var category: String
        public var reason: String

        public init(itemID: String = "", category: String = "", reason: String) {
            self.itemID = itemID
            self.category = category
            self.reason = reason
        }
    }

    public enum Strategy: String, Sendable, Equatable, CaseIterable {
        case unspecified, personalized, blended, session, popular, nonPersonalized, related
    }

    public struct RankedItem: Sendable, Equatable {
        public var itemID: String
        public var score: Float
        public var position: Int
        public var category: String
        public var brand: String
        public var explanation: Explanation?

        public init(
            itemID: String, score: Float, position: Int, category: String = "", brand: String = "",
            explanation: Explanation? = nil
        ) {
            self.itemID = itemID
            self.score = score
            self.position = position
            self.category = category
            self.brand = brand
            self.explanation = explanation
        }
    }

    public struct Explanation: Sendable, Equatable {
        public var baseRelevance: Float = 0
        public var boostedRelevance: Float = 0
        public var appliedBoosts: [String] = []
        public var diversityPenalty: Float = 0
        public var dppGain: Float = 0
        public var rule = ""
        public var constraints: [String] = []
        public var reason = ""
        /// Related: the seed this item is most similar to.
        public var similarToItemID = ""
        /// Share of relevance taken off by rotation (0: none) and the impressions in the window behind it.
        public var rotationPenalty: Float = 0
        public var recentImpressions = 0

        public init() {}
    }

    public struct DroppedPin: Sendable, Equatable {
        public var itemID: String
        public var position: Int
        public var reason: String

        public init(itemID: String, position: Int, reason: String) {
            self.itemID = itemID
            self.position = position
            self.reason = reason
        }
    }
}

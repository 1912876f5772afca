/// Why one item is where it is. Built only when the call passes an `ExplanationContext`.
public struct RerankExplanation: Sendable, Equatable {
    /// A boost that matched the item; `ruleIndex` indexes `RerankRules.boosts`.
    public struct AppliedBoost: Sendable, Equatable {
        public var ruleIndex: Int
        public var boost: Boost

        public init(ruleIndex: Int, boost: Boost) {
            self.ruleIndex = ruleIndex
            self.boost = boost
        }
    }

    /// What diversification did to the item.
    public enum Diversity: Sendable, Equatable {
        /// Method `.none`, or a pinned item.
        case none
        /// MMR: `penalty = (1−λ)·similarity`, `similarity` the largest cosine to an earlier item
        /// (`mostSimilarRow`, nil for the first pick).
        case mmr(penalty: Float, similarity: Float, mostSimilarRow: Int32?)
        /// DPP: `residual` is d²ᵢ (1 = orthogonal to the conditioning items, → 0 = redundant),
        /// `gain = (1−θ)·log d²ᵢ` the diversity part of the step's score.
        case dpp(gain: Float, residual: Float)
    }

    /// The rule that decided the position.
    public enum Placement: Sendable, Equatable {
        case pinned(Pin.Label)
        /// The most relevant eligible item.
        case relevance
        /// A more relevant eligible item (`overRow`) lost on diversity.
        case diversity(overRow: Int32)
        /// A higher-scoring item (`blockedRow`) was held back by `rule` (cap reached, spread).
        case rule(BlockingRule, blockedRow: Int32)
    }

    public var position: Int
    public var row: Int32
    /// Relevance as supplied in the `CandidateSet`.
    public var baseRelevance: Float
    /// After boosts and buries.
    public var boostedRelevance: Float
    /// Boosted relevance min–max normalised to [0, 1] over the eligible retrieved candidates.
    public var normalizedRelevance: Float
    public var appliedBoosts: [AppliedBoost]
    public var diversity: Diversity
    public var placement: Placement
    /// A short human reason, e.g. "Popular in Running Shoes".
    public var reason: String
}

/// Where the query vector came from; it picks the wording of the human reason.
public enum QueryOrigin: Sendable, Equatable {
    /// The session's recently viewed items.
    case recentlyViewed
    /// The user's long-term profile.
    case userProfile
    /// Cold start: popularity.
    case popularity
}

/// What the explainer needs from the caller to write human reasons. Names are looked up only
/// for the items in the list and only when explanations are requested.
public struct ExplanationContext: Sendable {
    public var origin: QueryOrigin
    public var categoryName: @Sendable (Int32) -> String?
    public var brandName: @Sendable (Int32) -> String?

    public init(
        origin: QueryOrigin, categoryName: @escaping @Sendable (Int32) -> String? = { _ in nil },
        brandName: @escaping @Sendable (Int32) -> String? = { _ in nil }
    ) {
        self.origin = origin
        self.categoryName = categoryName
        self.brandName = brandName
    }

    /// The reason sentence for one item. Pins say why they are pinned; other items say where they
    /// come from, then one qualifier (fresh, boosted brand, variety) when it applies.
    func reason(
        category: Int32, brand: Int32, placement: RerankExplanation.Placement,
        appliedBoosts: [RerankExplanation.AppliedBoost]
    ) -> String {
        if case .pinned(let label) = placement {
            return label == .sponsored ? "Sponsored" : "Editor's pick"
        }
        let categoryText = categoryName(category)
        var text: String
        switch origin {
        case .recentlyViewed:
            text = "Similar to items you viewed recently"
        case .userProfile:
            text = categoryText.map { "Matches your interest in \($0)" } ?? "Picked for you"
        case .popularity:
            text = categoryText.map { "Popular in \($0)" } ?? "Popular right now"
        }
        let promoted = appliedBoosts.filter { applied in
            switch applied.boost.effect {
            case .multiply(let f): return f > 1
            case .add(let a): return a > 0
            }
        }
        if promoted.contains(where: { if case .createdWithin = $0.boost.match { true } else { false } }) {
            text += " · new arrival"
        } else if promoted.contains(where: { if case .brand = $0.boost.match { true } else { false } }),
            let name = brandName(brand)
        {
            text += " · featured brand \(name)"
        } else if case .diversity = placement {
            text += " · adds variety"
        }
        return text
    }
}

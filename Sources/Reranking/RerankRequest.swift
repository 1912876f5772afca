/// How the list is diversified after boosts.
public enum DiversityMethod: Sendable, Equatable {
    /// Relevance order after boosts (ties: lower item row first).
    case none
    /// Maximal Marginal Relevance (Carbonell & Goldstein 1998): greedily picks the item maximising
    /// `λ·rel(i) − (1−λ)·max_{j∈S} cos(i, j)`, `rel` normalised to [0, 1] over the candidates.
    /// `lambda` is in [0, 1]; 1 is pure relevance.
    case mmr(lambda: Float)
    /// Greedy MAP inference for a determinantal point process (Chen, Zhang & Zhou, NeurIPS 2018)
    /// with kernel `L = diag(r)·S·diag(r)`, `S` the cosine kernel, `r_i = exp(α·rel(i))`,
    /// `α = θ / (2(1−θ))`; each step maximises `θ·rel(i) + (1−θ)·log d²ᵢ` where `d²ᵢ` is `i`'s
    /// residual variance given the items already chosen. `theta` is in [0, 1]; 1 is pure relevance.
    /// `window`, when set, conditions each step only on the last `window` items of the list
    /// (the paper's sliding-window variant, for lists longer than the vector dimension).
    case dpp(theta: Float, window: Int? = nil)
}

/// Hard exclusions, caps, boosts and pins for one request. All are combinable.
public struct RerankRules: Sendable, Equatable {
    /// Item rows that must never appear (already seen or bought). Any order, duplicates allowed.
    public var excludedRows: [Int32]
    /// When true, items with `inStock == false` never appear.
    public var excludeOutOfStock: Bool
    /// Categories that must never appear.
    public var deniedCategories: [Int32]
    /// Brands that must never appear.
    public var deniedBrands: [Int32]
    /// At most this many items of one category in the list (pins included); `nil` means no cap.
    public var maxPerCategory: Int?
    /// At most this many items of one brand in the list (pins included); `nil` means no cap.
    public var maxPerBrand: Int?
    /// At most `maxPerWindow` items of one category in any `window` consecutive positions.
    public var spread: SpreadRule?
    /// Relevance adjustments applied before diversification.
    public var boosts: [Boost]
    /// Items forced to exact positions.
    public var pins: [Pin]

    public init(
        excludedRows: [Int32] = [], excludeOutOfStock: Bool = false, deniedCategories: [Int32] = [],
        deniedBrands: [Int32] = [], maxPerCategory: Int? = nil, maxPerBrand: Int? = nil, spread: SpreadRule? = nil,
        boosts: [Boost] = [], pins: [Pin] = []
    ) {
        self.excludedRows = excludedRows
        self.excludeOutOfStock = excludeOutOfStock
        self.deniedCategories = deniedCategories
        self.deniedBrands = deniedBrands
        self.maxPerCategory = maxPerCategory
        self.maxPerBrand = maxPerBrand
        self.spread = spread
        self.boosts = boosts
        self.pins = pins
    }
}

/// At most `maxPerWindow` items of one category in any `window` consecutive positions.
public struct SpreadRule: Sendable, Equatable {
    public var maxPerWindow: Int
    public var window: Int
    public init(maxPerWindow: Int, window: Int) {
        self.maxPerWindow = maxPerWindow
        self.window = window
    }
}

/// Multiplies or adds to the relevance of matching items. All multiplicative boosts apply first,
/// then all additive ones: `boosted = raw · Π factors + Σ addends`. A factor below 1 or a negative
/// addend buries.
public struct Boost: Sendable, Equatable {
    public enum Match: Sendable, Equatable {
        case category(Int32)
        case brand(Int32)
        /// Matches when any of these tag bits is set on the item.
        case anyTag(UInt64)
        case item(row: Int32)
        /// Matches items created at most `days` days before `RerankRequest.now` (and not in the future).
        case createdWithin(days: Int)
    }

    public enum Effect: Sendable, Equatable {
        case multiply(Float)
        case add(Float)
    }

    public var match: Match
    public var effect: Effect

    public init(_ match: Match, _ effect: Effect) {
        self.match = match
        self.effect = effect
    }

    @inline(__always)
    func matches(row: Int32, category: Int32, brand: Int32, tags: UInt64, createdAt: Int64, now: Int64) -> Bool {
        switch match {
        case .category(let c): return c == category
        case .brand(let b): return b == brand
        case .anyTag(let bits): return tags & bits != 0
        case .item(let r): return r == row
        case .createdWithin(let days):
            let age = now - createdAt
            return age >= 0 && age <= Int64(days) * 86_400
        }
    }
}

/// An item forced to an exact 0-based position.
public struct Pin: Sendable, Equatable {
    /// Why the item is pinned; shown in explanations.
    public enum Label: Sendable, Equatable {
        case sponsored
        case editorial
    }

    public var row: Int32
    public var position: Int
    public var label: Label

    public init(row: Int32, position: Int, label: Label = .editorial) {
        self.row = row
        self.position = position
        self.label = label
    }
}

/// One re-ranking call.
public struct RerankRequest: Sendable, Equatable {
    /// Maximum list length.
    public var k: Int
    public var method: DiversityMethod
    public var rules: RerankRules
    /// Current time in Unix seconds, for freshness boosts (passed in so results reproduce).
    public var now: Int64

    public init(k: Int, method: DiversityMethod = .none, rules: RerankRules = RerankRules(), now: Int64 = 0) {
        self.k = k
        self.method = method
        self.rules = rules
        self.now = now
    }

    /// Checks every parameter; the error names the field.
    public func validate() throws(RerankError) {
        guard k >= 0 else { throw .invalidArgument(field: "k", reason: "must be ≥ 0, got \(k)") }
        switch method {
        case .none: break
        case .mmr(let lambda):
            guard lambda >= 0, lambda <= 1 else {
                throw .invalidArgument(field: "method.mmr.lambda", reason: "must be in [0, 1], got \(lambda)")
            }
        case .dpp(let theta, let window):
            guard theta >= 0, theta <= 1 else {
                throw .invalidArgument(field: "method.dpp.theta", reason: "must be in [0, 1], got \(theta)")
            }
            if let window, window < 1 {
                throw .invalidArgument(field: "method.dpp.window", reason: "must be ≥ 1, got \(window)")
            }
        }
        if let cap = rules.maxPerCategory, cap < 0 {
            throw .invalidArgument(field: "rules.maxPerCategory", reason: "must be ≥ 0, got \(cap)")
        }
        if let cap = rules.maxPerBrand, cap < 0 {
            throw .invalidArgument(field: "rules.maxPerBrand", reason: "must be ≥ 0, got \(cap)")
        }
        if let spread = rules.spread {
            guard spread.window >= 1 else {
                throw .invalidArgument(field: "rules.spread.window", reason: "must be ≥ 1, got \(spread.window)")
            }
            guard spread.maxPerWindow >= 1 else {
                throw .invalidArgument(
                    field: "rules.spread.maxPerWindow", reason: "must be ≥ 1, got \(spread.maxPerWindow)")
            }
        }
        for (index, boost) in rules.boosts.enumerated() {
            let value: Float
            switch boost.effect {
            case .multiply(let f): value = f
            case .add(let a): value = a
            }
            guard value.isFinite else {
                throw .invalidArgument(field: "rules.boosts[\(index)].effect", reason: "must be finite, got \(value)")
            }
            if case .createdWithin(let days) = boost.match, days < 0 {
                throw .invalidArgument(field: "rules.boosts[\(index)].match.days", reason: "must be ≥ 0, got \(days)")
            }
        }
    }
}

/// Bad input to `Reranker.rerank`. The engine maps it to `INVALID_ARGUMENT`.
public enum RerankError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A request field is out of range; `field` is its path in `RerankRequest`.
    case invalidArgument(field: String, reason: String)
    /// A candidate's relevance is NaN or infinite.
    case nonFiniteRelevance(row: Int32)

    public var description: String {
        switch self {
        case .invalidArgument(let field, let reason): return "\(field): \(reason)"
        case .nonFiniteRelevance(let row): return "candidate row \(row): relevance is not finite"
        }
    }
}

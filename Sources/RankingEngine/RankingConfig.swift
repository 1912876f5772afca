public import Foundation

/// Ranking defaults and experiments of a snapshot: the `ranking` object of its manifest.
///
/// ```json
/// { "k": 20, "poolSize": 300, "method": "mmr", "tradeoff": 0.7,
///   "blendWeight": 0.5, "sessionDecay": 0.7, "efSearch": 64,
///   "experiments": [
///     { "name": "diversity-nov", "salt": "d1",
///       "arms": [ { "name": "control", "weight": 45 },
///                 { "name": "dpp", "weight": 45, "method": "dpp", "tradeoff": 0.6 },
///                 { "name": "holdout", "weight": 10, "holdout": true } ] } ] }
/// ```
///
/// `"rotationRate": 0.1, "rotationWindowSeconds": 7200` set the rotation of recently shown items
/// (docs/ENGINE.md "Events"). Every key is optional. Unknown keys are errors, so a typo in a published config never goes
/// live silently.
public struct RankingConfig: Sendable, Equatable {
    /// Items returned when a request leaves `k` at 0.
    public var k = 20
    /// Candidates retrieved before re-ranking when a request leaves `candidate_pool` at 0.
    public var poolSize = 300
    /// Diversification when a request does not choose.
    public var method: Method = .mmr
    /// λ (MMR) / θ (DPP) when a request does not choose.
    public var tradeoff: Float = 0.7
    /// Weight of the session vector when blended with the user's embedding (0...1).
    public var blendWeight: Float = 0.5
    /// Each older recent item weighs this much of the next newer one (0 < decay ≤ 1).
    public var sessionDecay: Float = 0.7
    /// HNSW beam width for retrieval (≥ pool size is not required: the walk keeps max(ef, pool)).
    public var efSearch = 64
    /// Independent experiment layers; each user is in one arm of each.
    public var experiments: [Experiment] = []
    /// Rotation (requests may override both): an item shown to the user loses this share of its
    /// relevance per impression, fading linearly to nothing over `rotationWindowSeconds` (Recombee's
    /// rotationRate / rotationTime defaults). 0 turns rotation off.
    public var rotationRate: Float = 0.1
    public var rotationWindowSeconds = 7200
    /// Recorded interactions this recent serve as session signals when a request sends none.
    public var eventHistorySeconds = 86_400

    public enum Method: String, Sendable, Equatable, Codable { case none, mmr, dpp }

    public struct Experiment: Sendable, Equatable {
        public var name: String
        /// Mixed into the assignment hash: a new salt reshuffles users.
        public var salt: String
        public var arms: [Arm]
    }

    /// One arm: a share of users and the parameters it changes.
    public struct Arm: Sendable, Equatable {
        public var name: String
        public var weight: Double
        /// Served by popularity, never personalised (the control for "does personalisation help").
        public var holdout = false
        public var overrides = Overrides()
    }

    /// Parameters an arm may change; `nil` keeps the default.
    public struct Overrides: Sendable, Equatable {
        public var method: Method?
        public var tradeoff: Float?
        public var poolSize: Int?
        public var blendWeight: Float?
        public var efSearch: Int?
    }

    public init() {}

    /// Decodes and checks a config.
    ///
    /// - Throws: ``RankingConfigError`` naming the key and the problem.
    public static func decode(_ json: Data) throws(RankingConfigError) -> RankingConfig {
        do {
            return try JSONDecoder().decode(StrictConfig.self, from: json).config
        } catch let error as RankingConfigError {
            throw error
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            throw RankingConfigError("\(Self.path(context.codingPath)): wrong type (\(context.debugDescription))")
        } catch let DecodingError.dataCorrupted(context) {
            throw RankingConfigError("\(Self.path(context.codingPath)): \(context.debugDescription)")
        } catch {
            throw RankingConfigError("ranking: \(error)")
        }
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.reduce("ranking") { path, key in
            key.intValue.map { "\(path)[\($0)]" } ?? "\(path).\(key.stringValue)"
        }
    }
}

/// Any JSON key.
private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A keyed container that remembers which keys were read and rejects the others.
private struct StrictObject {
    let container: KeyedDecodingContainer<AnyKey>
    var seen: Set<String> = []

    init(_ decoder: any Decoder) throws {
        container = try decoder.container(keyedBy: AnyKey.self)
    }

    var path: String { RankingConfig.path(container.codingPath) }

    mutating func optional<T: Decodable>(_ key: String, _ type: T.Type = T.self) throws -> T? {
        seen.insert(key)
        return try container.decodeIfPresent(T.self, forKey: AnyKey(key))
    }

    mutating func int(_ key: String, in range: ClosedRange<Int>) throws -> Int? {
        // Decoded as a Double so that 2.5 gets our message rather than the decoder's.
        guard let number = try optional(key, Double.self) else { return nil }
        guard let value = Int(exactly: number), range.contains(value) else {
            throw RankingConfigError(
                "\(path).\(key): must be an integer in \(range.lowerBound)...\(range.upperBound), got \(number)")
        }
        return value
    }

    mutating func unit(_ key: String) throws -> Float? {
        guard let value = try optional(key, Double.self) else { return nil }
        guard value >= 0, value <= 1 else {
            throw RankingConfigError("\(path).\(key): must be in [0, 1], got \(value)")
        }
        return Float(value)
    }

    mutating func method(_ key: String) throws -> RankingConfig.Method? {
        guard let name = try optional(key, String.self) else { return nil }
        guard let method = RankingConfig.Method(rawValue: name) else {
            throw RankingConfigError("\(path).\(key): '\(name)' is not one of none, mmr, dpp")
        }
        return method
    }

    func rejectUnknownKeys() throws {
        if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !seen.contains($0) }) {
            throw RankingConfigError("\(path).\(unknown): unknown key")
        }
    }
}

private struct StrictConfig: Decodable {
    var config = RankingConfig()

    init(from decoder: any Decoder) throws {
        var object = try StrictObject(decoder)
        config.k = try object.int("k", in: 1...1000) ?? config.k
        config.poolSize = try object.int("poolSize", in: 1...5000) ?? config.poolSize
        config.method = try object.method("method") ?? config.method
        config.tradeoff = try object.unit("tradeoff") ?? config.tradeoff
        config.blendWeight = try object.unit("blendWeight") ?? config.blendWeight
        config.sessionDecay = try object.unit("sessionDecay") ?? config.sessionDecay
        guard config.sessionDecay > 0 else { throw RankingConfigError("ranking.sessionDecay: must be > 0") }
        config.efSearch = try object.int("efSearch", in: 1...10_000) ?? config.efSearch
        config.experiments = try object.optional("experiments", [StrictExperiment].self)?.map(\.experiment) ?? []
        config.rotationRate = try object.unit("rotationRate") ?? config.rotationRate
        config.rotationWindowSeconds =
            try object.int("rotationWindowSeconds", in: 1...30 * 86_400) ?? config.rotationWindowSeconds
        config.eventHistorySeconds =
            try object.int("eventHistorySeconds", in: 1...30 * 86_400) ?? config.eventHistorySeconds
        try object.rejectUnknownKeys()
        let names = config.experiments.map(\.name)
        guard Set(names).count == names.count else {
            throw RankingConfigError("ranking.experiments: names must be unique")
        }
    }
}

private struct StrictExperiment: Decodable {
    var experiment: RankingConfig.Experiment

    init(from decoder: any Decoder) throws {
        var object = try StrictObject(decoder)
        let path = object.path
        guard let name = try object.optional("name", String.self), !name.isEmpty else {
            throw RankingConfigError("\(path).name: required")
        }
        let salt = try object.optional("salt", String.self) ?? name
        let arms = try object.optional("arms", [StrictArm].self)?.map(\.arm) ?? []
        try object.rejectUnknownKeys()
        guard !arms.isEmpty else { throw RankingConfigError("\(path).arms: at least one arm is required") }
        guard arms.reduce(0, { $0 + $1.weight }) > 0 else {
            throw RankingConfigError("\(path).arms: weights sum to 0")
        }
        guard Set(arms.map(\.name)).count == arms.count else {
            throw RankingConfigError("\(path).arms: names must be unique")
        }
        experiment = .init(name: name, salt: salt, arms: arms)
    }
}

private struct StrictArm: Decodable {
    var arm: RankingConfig.Arm

    init(from decoder: any Decoder) throws {
        var object = try StrictObject(decoder)
        let path = object.path
        guard let name = try object.optional("name", String.self), !name.isEmpty else {
            throw RankingConfigError("\(path).name: required")
        }
        guard let weight = try object.optional("weight", Double.self), weight.isFinite, weight >= 0 else {
            throw RankingConfigError("\(path).weight: required, a number ≥ 0")
        }
        arm = .init(name: name, weight: weight)
        arm.holdout = try object.optional("holdout", Bool.self) ?? false
        arm.overrides.method = try object.method("method")
        arm.overrides.tradeoff = try object.unit("tradeoff")
        arm.overrides.blendWeight = try object.unit("blendWeight")
        arm.overrides.poolSize = try object.int("poolSize", in: 1...5000)
        arm.overrides.efSearch = try object.int("efSearch", in: 1...10_000)
        try object.rejectUnknownKeys()
    }
}

/// A ranking config that cannot be used; the message names the key.
public struct RankingConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

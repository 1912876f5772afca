import Foundation
import RankingAPI
import SeededRandom

extension Scenario {
    /// A `ranking.v1.Ranker/Rank` request template: who asks (user ids from a file, Zipf or
    /// uniform, a share of unknown users), their session, and the ranking rules.
    ///
    /// ```json
    /// { "usersFile": "demo/users.txt", "userDistribution": "zipf", "zipfExponent": 1.0,
    ///   "unknownUserShare": 0.05, "itemsFile": "demo/items.jsonl",
    ///   "sessionLengths": [ { "length": 0, "weight": 6 }, { "length": 3, "weight": 3 }, { "length": 10, "weight": 1 } ],
    ///   "k": 20, "candidatePool": 300,
    ///   "filter": { "excludeCategories": ["cat-3"], "inStockOnly": true, "maxPrice": 500 },
    ///   "diversity": { "method": "mmr", "tradeoff": 0.7, "maxPerCategory": 4 },
    ///   "explainShare": 0.1, "consentNoneShare": 0.02 }
    /// ```
    ///
    /// Paths are relative to the scenario file. `usersFile` has one id per line (`rankctl synth`
    /// writes `users.txt`); `itemsFile` is an item-attributes `.jsonl` (its `id` fields) or a
    /// text file of ids, and is needed only when some session length is above zero.
    public struct Rank: Sendable, Equatable, Decodable {
        public var usersFile: String?
        /// `zipf` (default) or `uniform` over the lines of `usersFile`.
        public var userDistribution: String
        public var zipfExponent: Double
        /// Share of requests from a user id the snapshot does not know (the cold-start path).
        public var unknownUserShare: Double
        public var itemsFile: String?
        /// How many recent items a request carries, weighted.
        public var sessionLengths: [SessionLength]
        public var k: Int
        /// 0: the server's default.
        public var candidatePool: Int
        public var filter: Filter
        public var diversity: Diversity
        /// Share of requests with `explain` on.
        public var explainShare: Double
        /// Share of requests with consent `NONE`.
        public var consentNoneShare: Double

        public struct SessionLength: Sendable, Equatable, Decodable {
            public var length: Int
            public var weight: Double
        }

        public struct Filter: Sendable, Equatable, Decodable {
            public var includeCategories: [String]?
            public var excludeCategories: [String]?
            public var includeBrands: [String]?
            public var excludeBrands: [String]?
            public var inStockOnly: Bool?
            public var minPrice: Double?
            public var maxPrice: Double?
            public var tagsAny: [String]?

            private enum CodingKeys: String, CodingKey, CaseIterable {
                case includeCategories, excludeCategories, includeBrands, excludeBrands, inStockOnly, minPrice
                case maxPrice, tagsAny
            }

            init() {}

            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                try rejectUnknownKeys(decoder, known: CodingKeys.self)
                includeCategories = try c.decodeIfPresent([String].self, forKey: .includeCategories)
                excludeCategories = try c.decodeIfPresent([String].self, forKey: .excludeCategories)
                includeBrands = try c.decodeIfPresent([String].self, forKey: .includeBrands)
                excludeBrands = try c.decodeIfPresent([String].self, forKey: .excludeBrands)
                inStockOnly = try c.decodeIfPresent(Bool.self, forKey: .inStockOnly)
                minPrice = try c.decodeIfPresent(Double.self, forKey: .minPrice)
                maxPrice = try c.decodeIfPresent(Double.self, forKey: .maxPrice)
                tagsAny = try c.decodeIfPresent([String].self, forKey: .tagsAny)
            }
        }

        public struct Diversity: Sendable, Equatable, Decodable {
            /// `none`, `mmr` or `dpp`; absent: the server's default.
            public var method: String?
            public var tradeoff: Float?
            public var maxPerCategory: Int?
            public var maxPerBrand: Int?

            private enum CodingKeys: String, CodingKey, CaseIterable {
                case method, tradeoff, maxPerCategory, maxPerBrand
            }

            init() {}

            public init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                try rejectUnknownKeys(decoder, known: CodingKeys.self)
                method = try c.decodeIfPresent(String.self, forKey: .method)
                tradeoff = try c.decodeIfPresent(Float.self, forKey: .tradeoff)
                maxPerCategory = try c.decodeIfPresent(Int.self, forKey: .maxPerCategory)
                maxPerBrand = try c.decodeIfPresent(Int.self, forKey: .maxPerBrand)
            }
        }

        private enum CodingKeys: String, CodingKey, CaseIterable {
            case usersFile, userDistribution, zipfExponent, unknownUserShare, itemsFile, sessionLengths, k
            case candidatePool, filter, diversity, explainShare, consentNoneShare
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            try rejectUnknownKeys(decoder, known: CodingKeys.self)
            usersFile = try c.decodeIfPresent(String.self, forKey: .usersFile)
            userDistribution = try c.decodeIfPresent(String.self, forKey: .userDistribution) ?? "zipf"
            zipfExponent = try c.decodeIfPresent(Double.self, forKey: .zipfExponent) ?? 1.0
            unknownUserShare = try c.decodeIfPresent(Double.self, forKey: .unknownUserShare) ?? 0
            itemsFile = try c.decodeIfPresent(String.self, forKey: .itemsFile)
            sessionLengths =
                try c.decodeIfPresent([SessionLength].self, forKey: .sessionLengths) ?? [.init(length: 0, weight: 1)]
            k = try c.decodeIfPresent(Int.self, forKey: .k) ?? 20
            candidatePool = try c.decodeIfPresent(Int.self, forKey: .candidatePool) ?? 0
            filter = try c.decodeIfPresent(Filter.self, forKey: .filter) ?? Filter()
            diversity = try c.decodeIfPresent(Diversity.self, forKey: .diversity) ?? Diversity()
            explainShare = try c.decodeIfPresent(Double.self, forKey: .explainShare) ?? 0
            consentNoneShare = try c.decodeIfPresent(Double.self, forKey: .consentNoneShare) ?? 0
        }

        /// Field-level checks (files are read when the pool is built).
        func validate(field: String, fail: (String, String) -> ScenarioError) throws(ScenarioError) {
            for (name, share) in [
                ("unknownUserShare", unknownUserShare), ("explainShare", explainShare),
                ("consentNoneShare", consentNoneShare),
            ] where !(0...1).contains(share) {
                throw fail("\(field).\(name)", "must be a share from 0 to 1, got \(share)")
            }
            guard ["zipf", "uniform"].contains(userDistribution) else {
                throw fail("\(field).userDistribution", "must be \"zipf\" or \"uniform\", got \"\(userDistribution)\"")
            }
            guard zipfExponent >= 0, zipfExponent.isFinite else {
                throw fail("\(field).zipfExponent", "must be >= 0, got \(zipfExponent)")
            }
            guard usersFile != nil || unknownUserShare == 1 else {
                throw fail("\(field).usersFile", "missing (needed unless unknownUserShare is 1)")
            }
            guard (1...1000).contains(k) else { throw fail("\(field).k", "must be 1...1000, got \(k)") }
            guard candidatePool >= 0 else { throw fail("\(field).candidatePool", "must be >= 0, got \(candidatePool)") }
            guard !sessionLengths.isEmpty else { throw fail("\(field).sessionLengths", "needs at least one entry") }
            for (index, entry) in sessionLengths.enumerated() {
                guard (0...1000).contains(entry.length) else {
                    throw fail("\(field).sessionLengths[\(index)].length", "must be 0...1000, got \(entry.length)")
                }
                guard entry.weight > 0, entry.weight.isFinite else {
                    throw fail(
                        "\(field).sessionLengths[\(index)].weight", "must be a positive number, got \(entry.weight)")
                }
            }
            if sessionLengths.contains(where: { $0.length > 0 }) && itemsFile == nil {
                throw fail("\(field).itemsFile", "missing (sessions longer than 0 need item ids)")
            }
            if let method = diversity.method,
                RankRequest.DiversityMethod(rawValue: method) == nil || method == "unspecified"
            {
                throw fail("\(field).diversity.method", "must be \"none\", \"mmr\" or \"dpp\", got \"\(method)\"")
            }
        }
    }
}

/// Turns a ``Scenario/Rank`` template into concrete requests: reads the id files once, then
/// draws users, sessions and flags with the pool's seeded generator.
struct RankRequestGenerator {
    let template: Scenario.Rank
    let users: [String]
    let items: [String]
    let zipf: ZipfSampler?
    let sessionCumulative: [Double]

    init(_ template: Scenario.Rank, field: String, baseDirectory: String?) throws(ScenarioError) {
        self.template = template
        users =
            try template.usersFile.map { path throws(ScenarioError) in
                try Self.readIDs(path, field: "\(field).usersFile", baseDirectory: baseDirectory)
            } ?? []
        items =
            try template.itemsFile.map { path throws(ScenarioError) in
                try Self.readIDs(path, field: "\(field).itemsFile", baseDirectory: baseDirectory)
            } ?? []
        zipf =
            users.isEmpty
            ? nil
            : ZipfSampler(
                count: users.count, exponent: template.userDistribution == "uniform" ? 0 : template.zipfExponent)
        let total = template.sessionLengths.reduce(0) { $0 + $1.weight }
        var running = 0.0
        sessionCumulative = template.sessionLengths.map { entry in
            running += entry.weight / total
            return running
        }
    }

    func make(using random: inout SplitMix64) -> RankRequest {
        var request = RankRequest()
        if let zipf, random.nextUnitInterval() >= template.unknownUserShare {
            request.userID = users[zipf.sample(using: &random)]
        } else {
            request.userID = "loadtest-unknown-\(random.next() % 1_000_000_000)"
        }
        let u = random.nextUnitInterval()
        let length = template.sessionLengths[sessionCumulative.firstIndex { u <= $0 } ?? (sessionCumulative.count - 1)]
            .length
        if !items.isEmpty {
            request.recentItemIDs = (0..<length).map { _ in items[Int(random.next() % UInt64(items.count))] }
        }
        request.k = template.k
        request.candidatePool = template.candidatePool
        let filter = template.filter
        request.filter.includeCategories = filter.includeCategories ?? []
        request.filter.excludeCategories = filter.excludeCategories ?? []
        request.filter.includeBrands = filter.includeBrands ?? []
        request.filter.excludeBrands = filter.excludeBrands ?? []
        request.filter.inStockOnly = filter.inStockOnly ?? false
        request.filter.minPrice = filter.minPrice
        request.filter.maxPrice = filter.maxPrice
        request.filter.tagsAny = filter.tagsAny ?? []
        let diversity = template.diversity
        request.diversity.method = diversity.method.flatMap(RankRequest.DiversityMethod.init(rawValue:)) ?? .unspecified
        request.diversity.tradeoff = diversity.tradeoff
        request.diversity.maxPerCategory = diversity.maxPerCategory ?? 0
        request.diversity.maxPerBrand = diversity.maxPerBrand ?? 0
        request.explain = random.nextUnitInterval() < template.explainShare
        request.consent = random.nextUnitInterval() < template.consentNoneShare ? .none : .full
        request.context = ["channel": "loadtest"]
        return request
    }

    /// Ids from a text file (one per line) or a `.jsonl` file (each line's `"id"`).
    static func readIDs(_ path: String, field: String, baseDirectory: String?) throws(ScenarioError) -> [String] {
        let resolved = path.hasPrefix("/") || baseDirectory == nil ? path : "\(baseDirectory!)/\(path)"
        let text: String
        do {
            text = try String(contentsOfFile: resolved, encoding: .utf8)
        } catch {
            throw ScenarioError(
                source: "", field: field, problem: "cannot read \(resolved): \(error.localizedDescription)")
        }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        var ids: [String] = []
        ids.reserveCapacity(lines.count)
        if resolved.hasSuffix(".jsonl") {
            for (number, line) in lines.enumerated() {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let id = object["id"] as? String, !id.isEmpty
                else {
                    throw ScenarioError(
                        source: "", field: field, problem: "\(resolved) line \(number + 1): no string \"id\"")
                }
                ids.append(id)
            }
        } else {
            ids = lines
        }
        guard !ids.isEmpty else { throw ScenarioError(source: "", field: field, problem: "\(resolved) holds no ids") }
        return ids
    }
}

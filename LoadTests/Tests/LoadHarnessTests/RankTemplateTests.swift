import Foundation
import LoadHarness
import NIOCore
import RankingAPI
import Testing

@Suite struct RankTemplateTests {
    /// A scenario directory with 100 users and 50 items (`.jsonl`, as `rankctl synth` writes).
    private func fixture(_ rank: String, poolSize: Int = 5000) throws -> Scenario {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("loadtest-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try (0..<100).map { "user-\($0)" }.joined(separator: "\n").write(
            to: directory.appendingPathComponent("users.txt"), atomically: true, encoding: .utf8)
        try (0..<50).map { "{\"id\": \"item-\($0)\", \"category\": \"c\"}" }.joined(separator: "\n").write(
            to: directory.appendingPathComponent("items.jsonl"), atomically: true, encoding: .utf8)
        let path = directory.appendingPathComponent("s.json").path
        try "{ \"name\": \"rank\", \"poolSize\": \(poolSize), \"requests\": [ { \"rank\": \(rank) } ] }".write(
            toFile: path, atomically: true, encoding: .utf8)
        return try Scenario.load(path: path)
    }

    private func decoded(_ pool: RequestPool) throws -> [RankRequest] {
        try pool.requests.map { request in
            #expect(request.path == RequestPool.rankPath)
            return try RankCodec.decodeRequest(request.message)
        }
    }

    @Test func requestsCarryTheTemplateRulesAndSampledUsers() throws {
        let scenario = try fixture(
            """
            { "usersFile": "users.txt", "zipfExponent": 1.0, "unknownUserShare": 0.1, "itemsFile": "items.jsonl",
              "sessionLengths": [ { "length": 0, "weight": 1 }, { "length": 3, "weight": 1 } ],
              "k": 7, "candidatePool": 120,
              "filter": { "excludeCategories": ["c9"], "inStockOnly": true, "maxPrice": 50 },
              "diversity": { "method": "dpp", "tradeoff": 0.5, "maxPerCategory": 2 },
              "explainShare": 0.25, "consentNoneShare": 0 }
            """)
        let requests = try decoded(try RequestPool(scenario: scenario))
        #expect(requests.count == 5000)
        #expect(
            requests.allSatisfy {
                $0.k == 7 && $0.candidatePool == 120 && $0.filter.excludeCategories == ["c9"] && $0.filter.inStockOnly
                    && $0.filter.maxPrice == 50 && $0.diversity.method == .dpp && $0.diversity.tradeoff == 0.5
                    && $0.diversity.maxPerCategory == 2 && $0.consent == .full
            })
        let unknown = requests.filter { $0.userID.hasPrefix("loadtest-unknown-") }.count
        #expect(abs(unknown - 500) < 90, "unknown users: \(unknown)")
        let explained = requests.filter(\.explain).count
        #expect(abs(explained - 1250) < 130, "explain: \(explained)")
        let sessions = Dictionary(grouping: requests, by: \.recentItemIDs.count).mapValues(\.count)
        #expect(Set(sessions.keys) == [0, 3] && abs(sessions[0]! - 2500) < 200)
        #expect(requests.flatMap(\.recentItemIDs).allSatisfy { $0.hasPrefix("item-") })
        // Zipf: user-0 is the most frequent known user, far ahead of user-50.
        let known = requests.map(\.userID).filter { $0.hasPrefix("user-") }
        let counts = Dictionary(grouping: known, by: { $0 }).mapValues(\.count)
        #expect(counts["user-0"]! > 4 * (counts["user-50"] ?? 0))
        #expect(counts["user-0"] == counts.values.max())
    }

    @Test func uniformUsersAreSpreadEvenly() throws {
        let scenario = try fixture(#"{ "usersFile": "users.txt", "userDistribution": "uniform" }"#, poolSize: 20_000)
        let requests = try decoded(try RequestPool(scenario: scenario))
        let counts = Dictionary(grouping: requests, by: \.userID).mapValues(\.count)
        #expect(counts.count == 100)
        #expect(counts.values.allSatisfy { (140...260).contains($0) }, "\(counts.values.sorted())")
        #expect(requests.allSatisfy { $0.recentItemIDs.isEmpty && $0.k == 20 && !$0.explain })
    }

    @Test func badRankFieldsAndFilesAreNamed() throws {
        let cases: [(rank: String, field: String, problem: String)] = [
            (
                #"{ "usersFile": "users.txt", "unknownUserShare": 1.5 }"#, "requests[0].rank.unknownUserShare",
                "share from 0 to 1"
            ),
            (#"{ "usersFile": "users.txt", "k": 0 }"#, "requests[0].rank.k", "must be 1...1000"),
            (
                #"{ "usersFile": "users.txt", "userDistribution": "pareto" }"#, "requests[0].rank.userDistribution",
                "zipf"
            ),
            (
                #"{ "usersFile": "users.txt", "sessionLengths": [ { "length": 2, "weight": 1 } ] }"#,
                "requests[0].rank.itemsFile", "missing"
            ),
            (
                #"{ "usersFile": "users.txt", "diversity": { "method": "best" } }"#,
                "requests[0].rank.diversity.method", "mmr"
            ),
            (
                #"{ "usersFile": "users.txt", "filter": { "inStock": true } }"#, "requests[0].rank.filter.inStock",
                "unknown field"
            ),
        ]
        for item in cases {
            #expect(throws: ScenarioError.self) { try fixture(item.rank) }
            do {
                _ = try fixture(item.rank)
            } catch let error as ScenarioError {
                #expect(error.field == item.field, "\(error)")
                #expect(error.problem.contains(item.problem), "\(error)")
            }
        }
        let missing = try fixture(#"{ "usersFile": "nope.txt" }"#)
        #expect {
            try RequestPool(scenario: missing)
        } throws: { error in
            let error = error as! ScenarioError
            return error.field == "requests[0].rank.usersFile" && error.problem.contains("nope.txt")
        }
    }
}

import Foundation
import LoadHarness
import NIOCore
import Testing

@Suite struct ScenarioTests {
    private func parse(_ json: String) throws(ScenarioError) -> Scenario {
        try Scenario.parse(Data(json.utf8), source: "test.json")
    }

    private func error(_ json: String) -> ScenarioError? {
        do {
            _ = try parse(json)
            return nil
        } catch {
            return error
        }
    }

    @Test func parsesWeightedEchoTemplatesWithDefaults() throws {
        let scenario = try parse(
            """
            { "name": "mix", "seed": 9, "poolSize": 100,
              "requests": [ { "weight": 3, "echo": { "payloadBytes": 16, "delayMs": 2, "text": "a" } },
                            { "echo": {} } ] }
            """)
        #expect(scenario.name == "mix" && scenario.seed == 9 && scenario.poolSize == 100)
        #expect(scenario.requests[0] == .init(weight: 3, echo: .init(payloadBytes: 16, delayMs: 2, text: "a")))
        #expect(scenario.requests[1] == .init(weight: 1, echo: .init()))
    }

    @Test func errorsNameTheFileAndField() {
        let cases: [(json: String, field: String, problem: String)] = [
            ("{ \"requests\": [] }", "requests", "needs at least one request template"),
            ("{ }", "requests", "missing required field"),
            (
                "{ \"requests\": [ { \"weight\": 0, \"echo\": {} } ] }", "requests[0].weight",
                "must be a positive number"
            ),
            ("{ \"requests\": [ { \"echo\": {} }, { \"weight\": 1 } ] }", "requests[1]", "names no request kind"),
            (
                "{ \"requests\": [ { \"echo\": { \"payloadBytes\": \"big\" } } ] }", "requests[0].echo.payloadBytes",
                "expected a whole number"
            ),
            (
                "{ \"requests\": [ { \"echo\": { \"payloadbytes\": 3 } } ] }", "requests[0].echo.payloadbytes",
                "unknown field"
            ),
            (
                "{ \"requests\": [ { \"echo\": { \"payloadBytes\": -1 } } ] }", "requests[0].echo.payloadBytes",
                "must be 0..."
            ),
            ("{ \"poolSize\": 0, \"requests\": [ { \"echo\": {} } ] }", "poolSize", "must be 1...1000000"),
            ("{ \"requests\": [ { \"rank\": {} } ] }", "requests[0].rank.usersFile", "missing"),
            ("{ \"requests\": [ { \"echo\": {}, \"rank\": {} } ] }", "requests[0]", "names two request kinds"),
            ("{ \"requests\": [ ", "", "not valid JSON"),
        ]
        for item in cases {
            guard let error = error(item.json) else {
                Issue.record("accepted: \(item.json)")
                continue
            }
            #expect(error.source == "test.json")
            #expect(error.field == item.field, "\(item.json)")
            #expect(error.problem.contains(item.problem), "\(error)")
            #expect(error.description.hasPrefix("scenario test.json: "))
        }
    }

    @Test func missingFileIsAClearError() {
        #expect(throws: ScenarioError.self) { try Scenario.load(path: "/nonexistent/scenario.json") }
    }

    @Test func shippedScenarioFilesParse() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../scenarios")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
        #expect(!files.isEmpty)
        for file in files {
            _ = try Scenario.load(path: directory.appendingPathComponent(file).path)
        }
    }

    @Test func poolFollowsTheWeightsAndSharesEncodedBytes() throws {
        let scenario = Scenario(
            name: "w", seed: 4, poolSize: 10_000,
            requests: [.init(weight: 9, echo: .init()), .init(weight: 1, echo: .init(payloadBytes: 100))])
        let pool = try RequestPool(scenario: scenario)
        #expect(pool.requests.count == 10_000)
        #expect(abs(pool.templateCounts[0] - 9000) < 150 && pool.templateCounts[0] + pool.templateCounts[1] == 10_000)
        #expect(pool[0].path == RequestPool.echoPath)
        #expect(pool[10_000].message == pool[0].message)
        let large = pool.requests.first { $0.message.readableBytes > 100 }
        #expect(large != nil)
        // The same seed gives the same pool.
        #expect(try RequestPool(scenario: scenario).requests.map(\.message) == pool.requests.map(\.message))
    }
}

import Foundation
import Testing

@testable import RankingEngine

@Suite struct RankingConfigTests {
    func decode(_ json: String) throws(RankingConfigError) -> RankingConfig {
        try RankingConfig.decode(Data(json.utf8))
    }

    func expectError(_ json: String, mentioning text: String) {
        do {
            _ = try decode(json)
            Issue.record("expected an error mentioning \(text)")
        } catch {
            #expect(error.description.contains(text), "\(error.description) should mention \(text)")
        }
    }

    @Test func emptyObjectGivesDefaults() throws {
        #expect(try decode("{}") == RankingConfig())
    }

    @Test func decodesEveryKey() throws {
        let config = try decode(
            """
            {"k": 10, "poolSize": 500, "method": "dpp", "tradeoff": 0.4, "blendWeight": 0.25, "sessionDecay": 0.5,
             "efSearch": 128, "experiments": [{"name": "e", "salt": "s", "arms": [
               {"name": "a", "weight": 1}, {"name": "b", "weight": 3, "method": "none", "tradeoff": 1, "poolSize": 50,
                "blendWeight": 0, "efSearch": 32}, {"name": "h", "weight": 1, "holdout": true}]}]}
            """)
        #expect(config.k == 10 && config.poolSize == 500 && config.method == .dpp && config.efSearch == 128)
        #expect(config.tradeoff == 0.4 && config.blendWeight == 0.25 && config.sessionDecay == 0.5)
        #expect(config.experiments.count == 1 && config.experiments[0].salt == "s")
        #expect(config.experiments[0].arms[1].overrides.poolSize == 50)
        #expect(config.experiments[0].arms[2].holdout)
    }

    @Test func acceptsTheSnapshotBuilderDefault() throws {
        let config = try decode(#"{"k": 20, "poolSize": 200, "method": "mmr", "tradeoff": 0.7, "experiments": []}"#)
        #expect(config.poolSize == 200)
    }

    @Test func rejectsBadValuesNamingTheKey() {
        expectError(#"{"k": 0}"#, mentioning: "ranking.k")
        expectError(#"{"k": "20"}"#, mentioning: "ranking.k")
        expectError(#"{"k": 2.5}"#, mentioning: "ranking.k")
        expectError(#"{"tradeoff": 1.5}"#, mentioning: "ranking.tradeoff")
        expectError(#"{"method": "random"}"#, mentioning: "ranking.method")
        expectError(#"{"poolsize": 10}"#, mentioning: "ranking.poolsize: unknown key")
        expectError(#"{"sessionDecay": 0}"#, mentioning: "ranking.sessionDecay")
        expectError(#"{"experiments": [{"arms": [{"name": "a", "weight": 1}]}]}"#, mentioning: "experiments[0].name")
        expectError(#"{"experiments": [{"name": "e", "arms": []}]}"#, mentioning: "experiments[0].arms")
        expectError(#"{"experiments": [{"name": "e", "arms": [{"name": "a", "weight": 0}]}]}"#, mentioning: "weights")
        expectError(
            #"{"experiments": [{"name": "e", "arms": [{"name": "a", "weight": 1, "colour": "red"}]}]}"#,
            mentioning: "experiments[0].arms[0].colour: unknown key")
        expectError(
            #"{"experiments": [{"name": "e", "arms": [{"name": "a", "weight": 1}, {"name": "a", "weight": 1}]}]}"#,
            mentioning: "unique")
        expectError("[1, 2]", mentioning: "ranking")
        expectError("not json", mentioning: "ranking")
    }
}

@Suite struct ExperimentAssignmentTests {
    let config: RankingConfig = {
        var config = RankingConfig()
        var treatment = RankingConfig.Arm(name: "treatment", weight: 30)
        treatment.overrides.method = .dpp
        treatment.overrides.tradeoff = 0.5
        var holdout = RankingConfig.Arm(name: "holdout", weight: 10)
        holdout.holdout = true
        config.experiments = [
            .init(name: "exp", salt: "nov", arms: [.init(name: "control", weight: 60), treatment, holdout])
        ]
        return config
    }()

    @Test func assignmentIsStableAcrossCalls() throws {
        for user in (0..<500).map({ "u\($0)" }) {
            let first = try config.parameters(userID: user, forcedArm: nil)
            let second = try config.parameters(userID: user, forcedArm: nil)
            #expect(first == second)
        }
    }

    @Test func sharesAreCloseToTheWeightsOver10kUsers() throws {
        var counts: [String: Int] = [:]
        for index in 0..<10_000 {
            counts[try config.parameters(userID: "user-\(index)", forcedArm: nil).arm, default: 0] += 1
        }
        // Binomial standard deviation at n = 10k is at most 0.5%; allow 1.5 percentage points.
        #expect(abs(Double(counts["control", default: 0]) / 10_000 - 0.6) < 0.015)
        #expect(abs(Double(counts["treatment", default: 0]) / 10_000 - 0.3) < 0.015)
        #expect(abs(Double(counts["holdout", default: 0]) / 10_000 - 0.1) < 0.015)
    }

    @Test func anotherSaltReshufflesUsers() throws {
        var other = config
        other.experiments[0].salt = "dec"
        var moved = 0
        for index in 0..<2_000 {
            let user = "user-\(index)"
            if try config.parameters(userID: user, forcedArm: nil).arm
                != other.parameters(userID: user, forcedArm: nil).arm
            {
                moved += 1
            }
        }
        // Independent assignments agree with probability 0.6² + 0.3² + 0.1² = 0.46.
        #expect(moved > 800)
    }

    @Test func armOverridesApply() throws {
        let parameters = try config.parameters(userID: "anyone", forcedArm: "treatment")
        #expect(parameters.method == .dpp && parameters.tradeoff == 0.5)
        #expect(parameters.experiment == "exp" && parameters.arm == "treatment")
        #expect(try config.parameters(userID: "anyone", forcedArm: "holdout").holdout)
    }

    @Test func unknownForcedArmIsAnErrorListingTheArms() {
        do {
            _ = try config.parameters(userID: "u", forcedArm: "nope")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("experiment_arm") && error.description.contains("control"))
        }
    }

    @Test func anonymousUsersAreNotInExperiments() throws {
        let parameters = try config.parameters(userID: "", forcedArm: nil)
        #expect(parameters.arm.isEmpty && !parameters.holdout && parameters.method == .mmr)
    }
}

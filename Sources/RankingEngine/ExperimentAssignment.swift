import MappedStorage

/// The parameters one request runs with: the config's defaults with the overrides of the
/// experiment arms the user falls in.
public struct RankingParameters: Sendable, Equatable {
    public var k: Int
    public var poolSize: Int
    public var method: RankingConfig.Method
    public var tradeoff: Float
    public var blendWeight: Float
    public var sessionDecay: Float
    public var efSearch: Int
    /// A holdout arm: serve popularity, never personalise.
    public var holdout = false
    /// `name` of each experiment the request is in, and the arm, in config order (comma-joined
    /// when there are several layers).
    public var experiment = ""
    public var arm = ""
}

extension RankingConfig {
    /// The defaults, before any experiment.
    public var defaultParameters: RankingParameters {
        RankingParameters(
            k: k, poolSize: poolSize, method: method, tradeoff: tradeoff, blendWeight: blendWeight,
            sessionDecay: sessionDecay, efSearch: efSearch)
    }

    /// The arm of `experiment` that `userID` falls in: a stable hash of (salt, user id), so a user
    /// stays in one arm across requests, restarts and servers, and a new salt reshuffles.
    public static func arm(of experiment: Experiment, userID: String) -> Arm {
        // 53 bits of the hash as a uniform fraction in [0, 1).
        let hash = XXHash64.hash(experiment.salt + "\u{1F}" + userID)
        let fraction = Double(hash >> 11) / Double(1 << 53)
        let total = experiment.arms.reduce(0) { $0 + $1.weight }
        var threshold = fraction * total
        for arm in experiment.arms where arm.weight > 0 {
            if threshold < arm.weight { return arm }
            threshold -= arm.weight
        }
        // Rounding at the very top of the range: the last arm with weight.
        return experiment.arms.last { $0.weight > 0 }!
    }

    /// Resolves the parameters for one request.
    ///
    /// Users without an id (anonymous traffic) are not in experiments: they get the defaults.
    /// `forcedArm` (QA) selects an arm by name in whichever experiment has it.
    ///
    /// - Throws: ``RankingConfigError`` when `forcedArm` names no arm.
    public func parameters(userID: String, forcedArm: String?) throws(RankingConfigError) -> RankingParameters {
        var parameters = defaultParameters
        if let forcedArm, !experiments.contains(where: { $0.arms.contains { $0.name == forcedArm } }) {
            let known = experiments.flatMap { $0.arms.map(\.name) }
            throw RankingConfigError(
                "experiment_arm: '\(forcedArm)' is not an arm of this snapshot's experiments (arms: \(known.isEmpty ? "none" : known.joined(separator: ", ")))"
            )
        }
        var experimentNames: [String] = []
        var armNames: [String] = []
        for experiment in experiments {
            let arm: Arm
            if let forcedArm, let forced = experiment.arms.first(where: { $0.name == forcedArm }) {
                arm = forced
            } else if userID.isEmpty {
                continue
            } else {
                arm = Self.arm(of: experiment, userID: userID)
            }
            experimentNames.append(experiment.name)
            armNames.append(arm.name)
            parameters.holdout = parameters.holdout || arm.holdout
            parameters.method = arm.overrides.method ?? parameters.method
            parameters.tradeoff = arm.overrides.tradeoff ?? parameters.tradeoff
            parameters.poolSize = arm.overrides.poolSize ?? parameters.poolSize
            parameters.blendWeight = arm.overrides.blendWeight ?? parameters.blendWeight
            parameters.efSearch = arm.overrides.efSearch ?? parameters.efSearch
        }
        parameters.experiment = experimentNames.joined(separator: ",")
        parameters.arm = armNames.joined(separator: ",")
        return parameters
    }
}

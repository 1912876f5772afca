import Foundation
import RankingEngine

/// `ranking-config`: JSON as it arrives in a manifest's `ranking` object or `--ranking-config`.
enum RankingConfigTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        let data = Data(bytes)
        do throws(RankingConfigError) {
            let config = try RankingConfig.decode(data)
            // Whatever was accepted must be within what the decoder promises to check.
            for experiment in config.experiments {
                fuzzCheck(!experiment.arms.isEmpty, "experiment \(experiment.name) accepted with no arms")
            }
        } catch {
            fuzzCheck(!error.description.isEmpty, "config rejected without a message")
        }
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        let documents = [
            ("defaults", #"{}"#),
            ("mmr", #"{"k": 10, "poolSize": 200, "method": "mmr", "tradeoff": 0.7, "experiments": []}"#),
            (
                "experiment",
                #"{"k": 20, "method": "dpp", "experiments": [{"name": "e", "salt": "s1", "arms": [{"name": "control", "weight": 50}, {"name": "mmr", "weight": 30, "method": "mmr", "tradeoff": 0.5}, {"name": "holdout", "weight": 20, "holdout": true}]}]}"#
            ),
            ("tuning", #"{"blendWeight": 0.25, "sessionDecay": 0.9, "efSearch": 32, "method": "none"}"#),
        ]
        return documents.map { ($0.0, Array($0.1.utf8)) }
    }
}

// The relevance / diversity trade-off curve: for MMR λ and DPP θ sweeps (and category caps, for
// comparison), NDCG@20 against pure relevance order, intra-list diversity (mean pairwise cosine
// distance of the 20 items) and category coverage (distinct categories in the 20), averaged over
// synthetic users. Prints a markdown table.
//
//   cd LoadTests && swift run --scratch-path .build-rerank -c release reranking-quality [users]

import Foundation
import Reranking
import RerankingWorkload

let users = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 100 : 100
let candidateCount = 500
let k = 20
let workloads = (0..<users).map { RerankingWorkload(seed: UInt64(1_000 + $0), count: candidateCount) }
let scratch = Reranker(candidates: candidateCount + 1, k: k)

struct Quality {
    var ndcg = 0.0
    var diversity = 0.0
    var coverage = 0.0
}

/// Scores the current `scratch.ranked` list of `workload`.
@MainActor
func quality(_ workload: RerankingWorkload) -> Quality {
    let c = workload.candidates
    let retrieved = (0..<c.count).filter { c.roles[$0] == .retrieved }
    let low = Double(retrieved.map { c.relevance[$0] }.min()!)
    let high = Double(retrieved.map { c.relevance[$0] }.max()!)
    func gain(_ i: Int) -> Double { (Double(c.relevance[i]) - low) / (high - low) }
    func discount(_ position: Int) -> Double { 1 / log2(Double(position) + 2) }
    let list = scratch.ranked.map { Int($0.candidateIndex) }
    let dcg = list.enumerated().map { gain($1) * discount($0) }.reduce(0, +)
    let ideal = retrieved.map(gain).sorted(by: >).prefix(k).enumerated().map { $1 * discount($0) }.reduce(0, +)
    var distance = 0.0
    var pairs = 0
    let d = c.dimension
    for a in 0..<list.count {
        for b in (a + 1)..<list.count {
            var dot: Float = 0
            for j in 0..<d { dot += c.vectors[list[a] * d + j] * c.vectors[list[b] * d + j] }
            distance += 1 - Double(dot)
            pairs += 1
        }
    }
    return Quality(
        ndcg: dcg / ideal, diversity: pairs > 0 ? distance / Double(pairs) : 0,
        coverage: Double(Set(list.map { c.categories[$0] }).count))
}

@MainActor
func row(_ label: String, _ parameter: String, _ rules: RerankRules = RerankRules(), method: DiversityMethod) throws {
    var total = Quality()
    for workload in workloads {
        try scratch.rerank(workload.candidates, RerankRequest(k: k, method: method, rules: rules))
        let q = quality(workload)
        total.ndcg += q.ndcg
        total.diversity += q.diversity
        total.coverage += q.coverage
    }
    let n = Double(workloads.count)
    print(
        "| \(label) | \(parameter) | \(format(total.ndcg / n)) | \(format(total.diversity / n)) | "
            + "\(format(total.coverage / n, digits: 1)) |")
}

func format(_ value: Double, digits: Int = 3) -> String { String(format: "%.\(digits)f", value) }

print("\(users) synthetic users, \(candidateCount) candidates each (20 categories, d = 64), k = \(k).")
print("")
print("| method | parameter | NDCG@20 | intra-list diversity | categories in top 20 |")
print("|---|---|---:|---:|---:|")
try row("NONE", "—", method: .none)
for cap in [5, 3, 2, 1] {
    try row("NONE + cap", "≤ \(cap) per category", RerankRules(maxPerCategory: cap), method: .none)
}
for lambda: Float in [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2] {
    try row("MMR", "λ = \(lambda)", method: .mmr(lambda: lambda))
}
for theta: Float in [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2] {
    try row("DPP", "θ = \(theta)", method: .dpp(theta: theta))
}
for theta: Float in [0.7, 0.5] {
    try row("DPP window 5", "θ = \(theta)", method: .dpp(theta: theta, window: 5))
}

// Re-ranking cost per call: NONE / MMR / DPP at candidates ∈ {100, 500, 2000} × k ∈ {10, 20, 100},
// d = 64, typical feed rules (exclusions, a category cap, two boosts, a sponsored pin), explain off.
// The scratch is warmed before measuring; "baseline" is an empty closure, so it shows the
// harness's own allocations per sample, which every other row includes.
//
//   cd LoadTests && swift package --scratch-path .build-rerank-tuned -Xswiftc -target-cpu -Xswiftc haswell \
//       --allow-writing-to-package-directory benchmark --target RerankingBenchmarks
//
// (host-tuned, as `make release` builds on a CPU with AVX2+FMA; drop the -Xswiftc flags and use
// another scratch path for a baseline x86-64 build. docs/BENCHMARKS.md "Re-ranking".)

import Benchmark
import Reranking
import RerankingWorkload

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .mallocCountTotal, .instructions], timeUnits: .microseconds,
        warmupIterations: 10, maxDuration: .seconds(1), maxIterations: 5_000)
    Benchmark("baseline (empty closure)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(0) }
    }
    let methods: [(String, DiversityMethod)] = [
        ("NONE", .none), ("MMR", .mmr(lambda: 0.7)), ("DPP", .dpp(theta: 0.7)),
    ]
    for count in [100, 500, 2000] {
        let workload = RerankingWorkload(seed: 42, count: count)
        for k in [10, 20, 100] {
            for (name, method) in methods {
                let request = RerankRequest(
                    k: k, method: method, rules: workload.typicalRules(k: k), now: RerankingWorkload.now)
                let scratch = Reranker(candidates: count + 1, k: k)
                Benchmark("\(name) \(count)→\(k)") { benchmark in
                    for _ in benchmark.scaledIterations {
                        blackHole(try scratch.rerank(workload.candidates, request))
                    }
                }
            }
        }
    }
    // The sliding-window DPP for long lists (each step conditions on the last 8 items).
    for count in [500, 2000] {
        let workload = RerankingWorkload(seed: 42, count: count)
        let request = RerankRequest(
            k: 100, method: .dpp(theta: 0.7, window: 8), rules: workload.typicalRules(k: 100),
            now: RerankingWorkload.now)
        let scratch = Reranker(candidates: count + 1, k: 100)
        Benchmark("DPP window 8 \(count)→100") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try scratch.rerank(workload.candidates, request))
            }
        }
    }
    // Explanations allocate by design; this shows their price.
    let workload = RerankingWorkload(seed: 42, count: 500)
    let request = RerankRequest(
        k: 20, method: .mmr(lambda: 0.7), rules: workload.typicalRules(k: 20), now: RerankingWorkload.now)
    let scratch = Reranker(candidates: 501, k: 20)
    let context = ExplanationContext(origin: .popularity, categoryName: { "Category \($0)" })
    Benchmark("MMR 500→20 explain") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try scratch.rerank(workload.candidates, request, explain: context))
        }
    }
}

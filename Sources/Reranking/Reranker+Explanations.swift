import Glibc

extension Reranker {
    /// Builds one `RerankExplanation` per ranked item from the traces the selection left.
    /// Allocates (strings, arrays): only called when the request asks for explanations.
    func buildExplanations(_ c: CandidateSet, _ request: RerankRequest, context: ExplanationContext) {
        let rules = request.rules
        let (traces, boosted, normalized) = (positions.traces, perCandidate.boosted, perCandidate.normalized)
        for (position, item) in ranked.enumerated() {
            let index = Int(item.candidateIndex)
            let trace = traces[position]
            var applied: [RerankExplanation.AppliedBoost] = []
            for (ruleIndex, boost) in rules.boosts.enumerated()
            where boost.matches(
                row: c.rows[index], category: c.categories[index], brand: c.brands[index], tags: c.tags[index],
                createdAt: c.createdAt[index], now: request.now)
            {
                applied.append(.init(ruleIndex: ruleIndex, boost: boost))
            }
            let placement: RerankExplanation.Placement
            let diversity: RerankExplanation.Diversity
            if item.isPinned {
                placement = .pinned(rules.pins[Int(trace.pinIndex)].label)
                diversity = .none
            } else {
                if trace.blocked >= 0, let rule = trace.blockedRule, trace.blockedScore > trace.score {
                    placement = .rule(rule, blockedRow: c.rows[Int(trace.blocked)])
                } else if trace.mostRelevant >= 0, Int(trace.mostRelevant) != index {
                    placement = .diversity(overRow: c.rows[Int(trace.mostRelevant)])
                } else {
                    placement = .relevance
                }
                switch parameters.kind {
                case .none:
                    diversity = .none
                case .mmr:
                    diversity = .mmr(
                        penalty: parameters.diversityWeight * trace.similarity, similarity: trace.similarity,
                        mostSimilarRow: trace.mostSimilar >= 0 ? c.rows[Int(trace.mostSimilar)] : nil)
                case .dpp, .windowedDPP:
                    let residual = max(trace.similarity, MethodParameters.minimumResidual)
                    diversity = .dpp(gain: parameters.diversityWeight * logf(residual), residual: trace.similarity)
                }
            }
            let reason = context.reason(
                category: c.categories[index], brand: c.brands[index], placement: placement, appliedBoosts: applied)
            explanations.append(
                RerankExplanation(
                    position: position, row: item.row, baseRelevance: c.relevance[index],
                    boostedRelevance: boosted[index], normalizedRelevance: normalized[index], appliedBoosts: applied,
                    diversity: diversity, placement: placement, reason: reason))
        }
    }
}

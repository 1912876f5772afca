import RankingModel
import Reranking
import Snapshot

/// The response values: ids and names, explanations, dropped pins, in the API's words.
extension RankCall {
    mutating func describe(outcome: RerankOutcome, set: CandidateSet, plan: Plan) {
        let attributes = snapshot.attributes
        let explanations = scratch.rerank.explanations
        for (position, ranked) in scratch.rerank.ranked.enumerated() {
            let row = Int(ranked.row)
            var item = RankResponse.RankedItem(
                itemID: snapshot.itemIds.id(at: row) ?? "", score: ranked.score, position: position,
                category: name(snapshot.categories, attributes.category[row]),
                brand: name(snapshot.brands, attributes.brand[row]))
            if position < explanations.count {
                item.explanation = explanation(explanations[position])
                if let rotation = rotationEntry(ranked.row) {
                    item.explanation?.rotationPenalty = 1 - rotation.keep
                    item.explanation?.recentImpressions = Int(rotation.impressions)
                }
            }
            response.items.append(item)
        }
        for dropped in scratch.rerank.droppedPins {
            let id = snapshot.itemIds.id(at: Int(dropped.pin.row)) ?? ""
            let original = request.pins.first { $0.itemID == id }
            response.droppedPins.append(
                .init(
                    itemID: id, position: original?.position ?? dropped.pin.position, reason: describe(dropped.reason)))
        }
        response.fewerThanK = response.items.count < plan.k
        explainNearestSeeds()
    }

    func name(_ table: IdTable, _ id: UInt32) -> String {
        id == ItemAttributes.none ? "" : table.id(at: Int(id)) ?? ""
    }

    func explanation(_ source: RerankExplanation) -> RankResponse.Explanation {
        var result = RankResponse.Explanation()
        result.baseRelevance = source.baseRelevance
        result.boostedRelevance = source.boostedRelevance
        result.appliedBoosts = source.appliedBoosts.map { describe($0.boost) }
        switch source.diversity {
        case .none: break
        case .mmr(let penalty, _, _): result.diversityPenalty = penalty
        case .dpp(let gain, _): result.dppGain = gain
        }
        switch source.placement {
        case .pinned: result.rule = "pinned"
        case .relevance:
            result.rule =
                response.strategy == .popular || response.strategy == .nonPersonalized ? "popularity" : "relevance"
        case .diversity:
            result.rule = plan(for: source)
        case .rule(let rule, let blockedRow):
            result.rule = plan(for: source)
            let blocked = snapshot.itemIds.id(at: Int(blockedRow)) ?? "another item"
            result.constraints = ["\(describe(rule)) (held back \(blocked))"]
        }
        result.reason = source.reason
        return result
    }

    func plan(for source: RerankExplanation) -> String {
        switch source.diversity {
        case .mmr: "mmr"
        case .dpp: "dpp"
        case .none: "relevance"
        }
    }

    func describe(_ boost: Reranking.Boost) -> String {
        let target: String =
            switch boost.match {
            case .category(let id): "category \(name(snapshot.categories, UInt32(bitPattern: id)))"
            case .brand(let id): "brand \(name(snapshot.brands, UInt32(bitPattern: id)))"
            case .anyTag(let bits): "tag \(snapshot.tags.id(at: bits.trailingZeroBitCount) ?? "?")"
            case .item(let row): "item \(snapshot.itemIds.id(at: Int(row)) ?? "?")"
            case .createdWithin(let days): "created within \(days) days"
            }
        switch boost.effect {
        case .multiply(let factor): return "\(target) ×\(factor)"
        case .add(let addend): return "\(target) \(addend >= 0 ? "+" : "")\(addend)"
        }
    }

    func describe(_ rule: BlockingRule) -> String {
        switch rule {
        case .categoryCap(let category, let limit):
            "cap of \(limit) reached for \(name(snapshot.categories, UInt32(bitPattern: category)))"
        case .brandCap(let brand, let limit):
            "cap of \(limit) reached for brand \(name(snapshot.brands, UInt32(bitPattern: brand)))"
        case .spread(let category, let maxPerWindow, let window):
            "at most \(maxPerWindow) of \(name(snapshot.categories, UInt32(bitPattern: category))) in \(window) positions"
        }
    }

    func describe(_ reason: Reranking.DroppedPin.Reason) -> String {
        switch reason {
        case .excluded(.excludedItem): "excluded by filter.exclude_item_ids"
        case .excluded(.outOfStock): "out of stock"
        case .excluded(.deniedCategory): "category excluded by filter"
        case .excluded(.deniedBrand): "brand excluded by filter"
        case .itemNotSupplied: "item not available"
        case .positionOutOfRange: "position is not below k"
        case .positionTaken: "position already pinned"
        case .duplicateItem: "item already pinned"
        case .conflictsWith(let rule): "conflicts with \(describe(rule))"
        case .listEndedBeforePosition: "too few eligible items to reach the position"
        }
    }
}

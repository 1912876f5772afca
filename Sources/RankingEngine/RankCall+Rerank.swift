import RankingModel
import Reranking
import Snapshot

/// From retrieved candidates to the re-ranker: the candidate set, pins, rules, boosts.
extension RankCall {
    mutating func rerank(filter: ItemFilter, plan: Plan, usesVectors: Bool) throws(RankError) {
        let attributes = snapshot.attributes
        let dimension = snapshot.dimension
        var set = scratch.candidateSet(dimension: dimension, capacity: scratch.results.count + request.pins.count)
        defer { scratch.candidates = set }
        scratch.vector.removeAll(keepingCapacity: true)
        scratch.vector.append(contentsOf: repeatElement(0, count: dimension))
        func append(row: Int32, relevance: Float, role: CandidateRole) {
            scratch.vector.withUnsafeMutableBufferPointer { snapshot.itemVectors.decode(row: Int(row), into: $0) }
            let index = Int(row)
            let item = Reranking.ItemAttributes(
                row: row, category: Int32(truncatingIfNeeded: attributes.category[index]),
                brand: Int32(truncatingIfNeeded: attributes.brand[index]), inStock: live.inStock[index] != 0,
                createdAt: attributes.createdAt[index], tags: live.tags[index])
            scratch.vector.withUnsafeBufferPointer { set.append(item, relevance: relevance, vector: $0, role: role) }
        }
        for result in scratch.results {
            append(row: result.row, relevance: rotated(result.score, row: result.row), role: .retrieved)
        }

        var pins: [Reranking.Pin] = []
        for pin in request.pins {
            guard let found = snapshot.itemIds.row(for: pin.itemID) else {
                response.unknownItemIDs.append(pin.itemID)
                response.droppedPins.append(.init(itemID: pin.itemID, position: pin.position, reason: "unknown item"))
                continue
            }
            let row = Int32(found)
            // Request filters and event rules (caps, purchases) are hard rules for pins too.
            if let reason = eventRejection(row) ?? filter.rejection(row) {
                response.droppedPins.append(.init(itemID: pin.itemID, position: pin.position, reason: reason))
                continue
            }
            if !scratch.results.contains(where: { $0.row == row }) {
                let relevance = usesVectors ? pinRelevance(row: row) : attributes.popularity[Int(row)]
                append(row: row, relevance: relevance.isFinite ? relevance : 0, role: .pinOnly)
            }
            pins.append(Reranking.Pin(row: row, position: pin.position))
        }

        let rules = RerankRules(
            excludedRows: scratch.excludedRows, excludeOutOfStock: request.filter.inStockOnly,
            deniedCategories: request.filter.excludeCategories.compactMap { snapshot.categories.row(for: $0) }.map {
                Int32($0)
            },
            deniedBrands: request.filter.excludeBrands.compactMap { snapshot.brands.row(for: $0) }.map { Int32($0) },
            maxPerCategory: request.diversity.maxPerCategory > 0 ? request.diversity.maxPerCategory : nil,
            maxPerBrand: request.diversity.maxPerBrand > 0 ? request.diversity.maxPerBrand : nil,
            spread: request.diversity.spreadWindow > 0
                ? SpreadRule(
                    maxPerWindow: request.diversity.spreadMaxPerCategory, window: request.diversity.spreadWindow)
                : nil,
            boosts: boosts(), pins: pins)
        let method: DiversityMethod =
            switch plan.method {
            case .none: .none
            case .mmr: .mmr(lambda: plan.tradeoff)
            // The greedy DPP conditions on at most `dimension` items before d² collapses; longer
            // lists use the sliding window of that length.
            case .dpp: .dpp(theta: plan.tradeoff, window: plan.k > dimension ? dimension : nil)
            }
        let rerankRequest = RerankRequest(k: plan.k, method: method, rules: rules, now: now)
        let context = request.explain ? explanationContext() : nil
        let outcome: RerankOutcome
        do {
            outcome = try scratch.rerank.rerank(set, rerankRequest, explain: context)
        } catch {
            throw .invalidArgument(error.description)
        }
        record(\.rerank)
        describe(outcome: outcome, set: set, plan: plan)
        record(\.describe)
    }

    func pinRelevance(row: Int32) -> Float {
        var dot: Float = 0
        scratch.vector.withUnsafeMutableBufferPointer { snapshot.itemVectors.decode(row: Int(row), into: $0) }
        for j in 0..<scratch.query.count { dot += scratch.query[j] * scratch.vector[j] }
        return dot
    }

    /// API boosts → re-ranker boosts: names become dictionary ids or tag bits; unknown names
    /// match nothing, so they are dropped. Multiply and add become two rules (multiplies first).
    func boosts() -> [Reranking.Boost] {
        var boosts: [Reranking.Boost] = []
        for boost in request.boosts {
            let match: Reranking.Boost.Match
            switch boost.target {
            case .category(let name):
                guard let id = snapshot.categories.row(for: name) else { continue }
                match = .category(Int32(id))
            case .brand(let name):
                guard let id = snapshot.brands.row(for: name) else { continue }
                match = .brand(Int32(id))
            case .tag(let name):
                guard let bit = snapshot.tags.row(for: name), bit < 64 else { continue }
                match = .anyTag(1 << UInt64(bit))
            case .itemID(let id):
                guard let row = snapshot.itemIds.row(for: id) else { continue }
                match = .item(row: Int32(row))
            case .freshWithinDays(let days):
                match = .createdWithin(days: days)
            }
            if let factor = boost.multiply { boosts.append(.init(match, .multiply(factor))) }
            if boost.add != 0 { boosts.append(.init(match, .add(boost.add))) }
        }
        return boosts
    }

    func explanationContext() -> ExplanationContext {
        let origin: QueryOrigin =
            switch response.strategy {
            case .session, .blended, .related: .recentlyViewed
            case .personalized: .userProfile
            default: .popularity
            }
        let snapshot = self.snapshot
        return ExplanationContext(
            origin: origin, categoryName: { snapshot.categories.id(at: Int($0)) },
            brandName: { snapshot.brands.id(at: Int($0)) })
    }
}

import Reranking
import TestSupport

/// Seeded random catalogues and rule sets for the property tests, plus the checks every
/// re-ranked list must pass whatever the rules.
enum RerankFixtures {
    static let day: Int64 = 86_400
    static let now: Int64 = 1_800_000_000

    /// `count` retrieved items (rows 0 ..< count, shuffled) and `pinOnly` extra items (rows from
    /// 10_000), Gaussian vectors, relevance in [0, 1), few categories and brands so caps bite.
    static func catalogue(
        seed: UInt64, count: Int, dimension: Int = 16, categories: Int32 = 6, brands: Int32 = 5, pinOnly: Int = 3,
        clustered: Bool = false
    ) -> CandidateSet {
        var rng = SeededGenerator(seed: seed)
        var set = CandidateSet(dimension: dimension, reservingCapacity: count + pinOnly)
        var rows = (0..<Int32(count)).map { $0 }
        rows.shuffle(using: &rng)
        let centres = (0..<Int(categories)).map { _ in (0..<dimension).map { _ in rng.nextGaussian() } }
        for (n, row) in (rows + (0..<Int32(pinOnly)).map { 10_000 + $0 }).enumerated() {
            let category = Int32.random(in: 0..<categories, using: &rng)
            let vector = (0..<dimension).map { j in
                (clustered ? centres[Int(category)][j] * 2 : 0) + rng.nextGaussian()
            }
            let attributes = ItemAttributes(
                row: row, category: category, brand: Int32.random(in: 0..<brands, using: &rng),
                inStock: Int.random(in: 0..<10, using: &rng) != 0,
                createdAt: now - Int64.random(in: 0..<(60 * day), using: &rng),
                tags: UInt64.random(in: 0...UInt64.max, using: &rng) & 0xFF)
            set.append(
                attributes, relevance: Float.random(in: 0..<1, using: &rng), vector: vector,
                role: n < count ? .retrieved : .pinOnly)
        }
        return set
    }

    /// A random combination of every kind of rule, including pins that must be dropped.
    static func rules(seed: UInt64, rowCount: Int, k: Int) -> RerankRules {
        var rng = SeededGenerator(seed: seed ^ 0x5EED)
        var rules = RerankRules()
        rules.excludedRows = (0..<Int.random(in: 0...8, using: &rng)).map { _ in
            Int32.random(in: 0..<Int32(rowCount), using: &rng)
        }
        rules.excludeOutOfStock = Bool.random(using: &rng)
        if Bool.random(using: &rng) { rules.deniedCategories = [Int32.random(in: 0..<6, using: &rng)] }
        if Bool.random(using: &rng) { rules.deniedBrands = [Int32.random(in: 0..<5, using: &rng)] }
        if Bool.random(using: &rng) { rules.maxPerCategory = Int.random(in: 0...4, using: &rng) }
        if Bool.random(using: &rng) { rules.maxPerBrand = Int.random(in: 1...5, using: &rng) }
        if Bool.random(using: &rng) {
            rules.spread = SpreadRule(
                maxPerWindow: Int.random(in: 1...2, using: &rng), window: Int.random(in: 2...4, using: &rng))
        }
        rules.boosts = [
            Boost(.category(Int32.random(in: 0..<6, using: &rng)), .multiply(1.5)),
            Boost(.brand(Int32.random(in: 0..<5, using: &rng)), .add(-0.3)),
            Boost(.anyTag(1 << UInt64.random(in: 0..<8, using: &rng)), .add(0.2)),
            Boost(.createdWithin(days: 7), .multiply(1.2)),
            Boost(.item(row: Int32.random(in: 0..<Int32(rowCount), using: &rng)), .add(1)),
        ]
        for _ in 0..<Int.random(in: 0...4, using: &rng) {
            let row =
                Bool.random(using: &rng)
                ? Int32.random(in: 0..<Int32(rowCount), using: &rng) : 10_000 + Int32.random(in: 0..<4, using: &rng)
            rules.pins.append(
                Pin(
                    row: row, position: Int.random(in: -1...(k + 1), using: &rng),
                    label: Bool.random(using: &rng) ? .sponsored : .editorial))
        }
        return rules
    }

    static func isExcluded(_ c: CandidateSet, _ i: Int, _ rules: RerankRules) -> Bool {
        rules.excludedRows.contains(c.rows[i]) || (rules.excludeOutOfStock && !c.inStock[i])
            || rules.deniedCategories.contains(c.categories[i]) || rules.deniedBrands.contains(c.brands[i])
    }

    /// Every invariant of the output, checked from the outside. Returns the violations found.
    static func violations(
        _ c: CandidateSet, _ request: RerankRequest, _ outcome: RerankOutcome, _ scratch: Reranker
    ) -> [String] {
        var problems: [String] = []
        let list = scratch.ranked
        let rules = request.rules
        if list.count > request.k { problems.append("list longer than k") }
        if outcome.count != list.count { problems.append("outcome count differs") }
        if Set(list.map(\.row)).count != list.count { problems.append("duplicate rows") }
        var perCategory: [Int32: Int] = [:]
        var perBrand: [Int32: Int] = [:]
        for (p, item) in list.enumerated() {
            let i = Int(item.candidateIndex)
            if c.rows[i] != item.row { problems.append("row/candidate mismatch at \(p)") }
            if isExcluded(c, i, rules) { problems.append("excluded row \(item.row) at \(p)") }
            if c.roles[i] == .pinOnly && !item.isPinned { problems.append("pin-only row \(item.row) unpinned") }
            perCategory[c.categories[i], default: 0] += 1
            perBrand[c.brands[i], default: 0] += 1
        }
        if let cap = rules.maxPerCategory, perCategory.values.contains(where: { $0 > cap }) {
            problems.append("category cap \(cap) exceeded: \(perCategory)")
        }
        if let cap = rules.maxPerBrand, perBrand.values.contains(where: { $0 > cap }) {
            problems.append("brand cap \(cap) exceeded: \(perBrand)")
        }
        if let spread = rules.spread, !list.isEmpty {
            for start in 0..<list.count {
                let window = list[start..<min(list.count, start + spread.window)]
                var counts: [Int32: Int] = [:]
                for item in window { counts[c.categories[Int(item.candidateIndex)], default: 0] += 1 }
                if counts.values.contains(where: { $0 > spread.maxPerWindow }) {
                    problems.append("spread rule broken in window at \(start)")
                }
            }
        }
        // Each pin is either exactly at its position or reported as dropped, never both.
        for pin in rules.pins {
            let placed =
                pin.position >= 0 && pin.position < list.count && list[pin.position].row == pin.row
                && list[pin.position].isPinned
            let dropped = scratch.droppedPins.contains { $0.pin == pin }
            if placed == dropped && !(placed && rules.pins.filter({ $0 == pin }).count > 1) {
                problems.append("pin \(pin) placed=\(placed) dropped=\(dropped)")
            }
        }
        for (p, item) in list.enumerated() where item.isPinned {
            if !rules.pins.contains(where: { $0.row == item.row && $0.position == p }) {
                problems.append("item at \(p) marked pinned without a pin")
            }
        }
        let eligibleLeft = (0..<c.count).contains { i in
            c.roles[i] == .retrieved && !isExcluded(c, i, rules) && !list.contains { $0.row == c.rows[i] }
        }
        switch outcome.shortfall {
        case nil where list.count < request.k: problems.append("short list without a flag")
        case .some where list.count == request.k: problems.append("flag on a full list")
        case .candidatesExhausted? where eligibleLeft: problems.append("exhausted, yet eligible items remain")
        case .blockedByRules? where !eligibleLeft: problems.append("blocked by rules, yet nothing eligible remains")
        default: break
        }
        return problems
    }
}

import CProtobufC
public import GRPCCore
public import NIOCore
public import RankingModel
import RankingProtos

/// `ranking.v1.RankRequest` / `RankResponse` ⇄ Swift values, through protobuf-c.
///
/// The server decodes requests and encodes responses; clients (rankctl, LoadTests, tests) do the
/// reverse. C structs live in a ``CArena`` for the duration of one call, so a decode or encode
/// costs a handful of Swift allocations (the strings) and no per-field `malloc`.
public enum RankCodec {
    /// Decodes a request. Malformed bytes → `INVALID_ARGUMENT`; field values are checked later by
    /// ``RankRequest/validate(limits:)``.
    public static func decodeRequest(_ buffer: ByteBuffer) throws(GRPCStatus) -> RankRequest {
        let arena = CArena(blockSize: 16 * 1024)
        return try ProtobufCodec.decode(
            buffer, initializer: ranking__v1__rank_request__init, arena: arena
        ) { (message) throws(GRPCStatus) -> RankRequest in
            try request(from: message.pointee)
        }
    }

    /// Encodes a request (client side).
    public static func encodeRequest(_ request: RankRequest, allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        let arena = CArena(blockSize: 8 * 1024)
        let message = arena.allocate(Ranking__V1__RankRequest.self)
        ranking__v1__rank_request__init(message)
        fill(message, from: request, arena: arena)
        return ProtobufCodec.encode(message, allocator: allocator)
    }

    /// Encodes a response (server side).
    public static func encodeResponse(_ response: RankResponse, allocator: ByteBufferAllocator = .init()) -> ByteBuffer
    {
        let arena = CArena(blockSize: 16 * 1024)
        let message = arena.allocate(Ranking__V1__RankResponse.self)
        ranking__v1__rank_response__init(message)
        fill(message, from: response, arena: arena)
        return ProtobufCodec.encode(message, allocator: allocator)
    }

    /// Decodes a response (client side).
    public static func decodeResponse(_ buffer: ByteBuffer) throws(GRPCStatus) -> RankResponse {
        let arena = CArena(blockSize: 16 * 1024)
        return try ProtobufCodec.decode(
            buffer, initializer: ranking__v1__rank_response__init, arena: arena
        ) { (message) throws(GRPCStatus) -> RankResponse in
            response(from: message.pointee)
        }
    }

    // MARK: Request

    static func request(from m: Ranking__V1__RankRequest) throws(GRPCStatus) -> RankRequest {
        var r = RankRequest()
        r.userID = ProtobufCodec.string(m.user_id)
        r.k = Int(m.k)
        r.recentItemIDs = ProtobufCodec.strings(m.recent_item_ids, m.n_recent_item_ids)
        r.candidatePool = Int(m.candidate_pool)
        if let f = m.filter?.pointee {
            r.filter.includeCategories = ProtobufCodec.strings(f.include_categories, f.n_include_categories)
            r.filter.excludeCategories = ProtobufCodec.strings(f.exclude_categories, f.n_exclude_categories)
            r.filter.includeBrands = ProtobufCodec.strings(f.include_brands, f.n_include_brands)
            r.filter.excludeBrands = ProtobufCodec.strings(f.exclude_brands, f.n_exclude_brands)
            r.filter.inStockOnly = f.in_stock_only != 0
            r.filter.minPrice = f.min_price?.pointee.value
            r.filter.maxPrice = f.max_price?.pointee.value
            r.filter.tagsAny = ProtobufCodec.strings(f.tags_any, f.n_tags_any)
            r.filter.excludeItemIDs = ProtobufCodec.strings(f.exclude_item_ids, f.n_exclude_item_ids)
            r.filter.excludePurchasedWithinSeconds = Int(f.exclude_purchased_within_seconds)
        }
        if let d = m.diversity?.pointee {
            switch d.method {
            case RANKING__V1__DIVERSITY_METHOD__DIVERSITY_METHOD_NONE: r.diversity.method = .none
            case RANKING__V1__DIVERSITY_METHOD__DIVERSITY_METHOD_MMR: r.diversity.method = .mmr
            case RANKING__V1__DIVERSITY_METHOD__DIVERSITY_METHOD_DPP: r.diversity.method = .dpp
            case RANKING__V1__DIVERSITY_METHOD__DIVERSITY_METHOD_UNSPECIFIED: r.diversity.method = .unspecified
            default:
                throw GRPCStatus(.invalidArgument, "diversity.method: unknown value \(d.method.rawValue)")
            }
            r.diversity.tradeoff = d.tradeoff?.pointee.value
            r.diversity.maxPerCategory = Int(d.max_per_category)
            r.diversity.maxPerBrand = Int(d.max_per_brand)
            r.diversity.spreadWindow = Int(d.spread_window)
            r.diversity.spreadMaxPerCategory = Int(d.spread_max_per_category)
        }
        for index in 0..<m.n_boosts {
            guard let b = m.boosts[index]?.pointee else { continue }
            let target: RankRequest.Boost.Target
            switch b.target_case {
            case RANKING__V1__BOOST__TARGET_CATEGORY: target = .category(ProtobufCodec.string(b.category))
            case RANKING__V1__BOOST__TARGET_BRAND: target = .brand(ProtobufCodec.string(b.brand))
            case RANKING__V1__BOOST__TARGET_TAG: target = .tag(ProtobufCodec.string(b.tag))
            case RANKING__V1__BOOST__TARGET_ITEM_ID: target = .itemID(ProtobufCodec.string(b.item_id))
            case RANKING__V1__BOOST__TARGET_FRESH_WITHIN_DAYS: target = .freshWithinDays(Int(b.fresh_within_days))
            default:
                throw GRPCStatus(
                    .invalidArgument,
                    "boosts[\(index)]: set exactly one target (category, brand, tag, item_id or fresh_within_days)")
            }
            r.boosts.append(.init(target: target, multiply: b.multiply?.pointee.value, add: b.add))
        }
        for index in 0..<m.n_pins {
            guard let p = m.pins[index]?.pointee else { continue }
            r.pins.append(.init(itemID: ProtobufCodec.string(p.item_id), position: Int(p.position)))
        }
        r.explain = m.explain != 0
        switch m.consent {
        case RANKING__V1__CONSENT__CONSENT_NONE: r.consent = .none
        case RANKING__V1__CONSENT__CONSENT_FULL, RANKING__V1__CONSENT__CONSENT_UNSPECIFIED: r.consent = .full
        default: throw GRPCStatus(.invalidArgument, "consent: unknown value \(m.consent.rawValue)")
        }
        let arm = ProtobufCodec.string(m.experiment_arm)
        r.experimentArm = arm.isEmpty ? nil : arm
        for index in 0..<m.n_context {
            guard let entry = m.context[index]?.pointee else { continue }
            r.context[ProtobufCodec.string(entry.key)] = ProtobufCodec.string(entry.value)
        }
        if let rotation = m.rotation?.pointee {
            r.rotation = .init(rate: rotation.rate?.pointee.value, windowSeconds: Int(rotation.window_seconds))
        }
        for index in 0..<m.n_frequency_caps {
            guard let cap = m.frequency_caps[index]?.pointee else { continue }
            let scope: RankRequest.FrequencyCap.Scope
            switch cap.scope {
            case RANKING__V1__CAP_SCOPE__CAP_SCOPE_ITEM: scope = .item
            case RANKING__V1__CAP_SCOPE__CAP_SCOPE_CATEGORY: scope = .category
            default:
                throw GRPCStatus(
                    .invalidArgument, "frequency_caps[\(index)].scope: unknown value \(cap.scope.rawValue)")
            }
            r.frequencyCaps.append(
                .init(maxImpressions: Int(cap.max_impressions), windowSeconds: Int(cap.window_seconds), scope: scope))
        }
        r.ignoreEventHistory = m.ignore_event_history != 0
        return r
    }

    static func fill(_ m: UnsafeMutablePointer<Ranking__V1__RankRequest>, from r: RankRequest, arena: CArena) {
        m.pointee.user_id = arena.cString(r.userID)
        m.pointee.k = UInt32(clamping: r.k)
        (m.pointee.n_recent_item_ids, m.pointee.recent_item_ids) = (
            r.recentItemIDs.count, arena.cStrings(r.recentItemIDs)
        )
        m.pointee.candidate_pool = UInt32(clamping: r.candidatePool)
        if !r.filter.isEmpty || r.filter.excludePurchasedWithinSeconds != 0 {
            let f = arena.allocate(Ranking__V1__Filter.self)
            ranking__v1__filter__init(f)
            let filter = r.filter
            (f.pointee.n_include_categories, f.pointee.include_categories) =
                (filter.includeCategories.count, arena.cStrings(filter.includeCategories))
            (f.pointee.n_exclude_categories, f.pointee.exclude_categories) =
                (filter.excludeCategories.count, arena.cStrings(filter.excludeCategories))
            (f.pointee.n_include_brands, f.pointee.include_brands) =
                (filter.includeBrands.count, arena.cStrings(filter.includeBrands))
            (f.pointee.n_exclude_brands, f.pointee.exclude_brands) =
                (filter.excludeBrands.count, arena.cStrings(filter.excludeBrands))
            f.pointee.in_stock_only = filter.inStockOnly ? 1 : 0
            f.pointee.min_price = filter.minPrice.map { doubleValue($0, arena) }
            f.pointee.max_price = filter.maxPrice.map { doubleValue($0, arena) }
            (f.pointee.n_tags_any, f.pointee.tags_any) = (filter.tagsAny.count, arena.cStrings(filter.tagsAny))
            (f.pointee.n_exclude_item_ids, f.pointee.exclude_item_ids) =
                (filter.excludeItemIDs.count, arena.cStrings(filter.excludeItemIDs))
            f.pointee.exclude_purchased_within_seconds = UInt32(clamping: filter.excludePurchasedWithinSeconds)
            m.pointee.filter = f
        }
        if r.diversity != RankRequest.Diversity() {
            let d = arena.allocate(Ranking__V1__Diversity.self)
            ranking__v1__diversity__init(d)
            switch r.diversity.method {
            case .unspecified: d.pointee.method = RANKING__V1__DIVERSITY_METHOD__DIVERSITY_METHOD_UNSPECIFIED
            case .none: d.pointee.method = RANKING__V1__DIVERSITY_METHOD__DIVERSITY_METHOD_NONE
            case .mmr: d.pointee.method = RANKING__V1__DIVERSITY_METHOD__DIVERSITY_METHOD_MMR
            case .dpp: d.pointee.method = RANKING__V1__DIVERSITY_METHOD__DIVERSITY_METHOD_DPP
            }
            d.pointee.tradeoff = r.diversity.tradeoff.map { floatValue($0, arena) }
            d.pointee.max_per_category = UInt32(clamping: r.diversity.maxPerCategory)
            d.pointee.max_per_brand = UInt32(clamping: r.diversity.maxPerBrand)
            d.pointee.spread_window = UInt32(clamping: r.diversity.spreadWindow)
            d.pointee.spread_max_per_category = UInt32(clamping: r.diversity.spreadMaxPerCategory)
            m.pointee.diversity = d
        }
        if !r.boosts.isEmpty {
            let boosts = arena.allocate(UnsafeMutablePointer<Ranking__V1__Boost>?.self, count: r.boosts.count)
            for (index, boost) in r.boosts.enumerated() {
                let b = arena.allocate(Ranking__V1__Boost.self)
                ranking__v1__boost__init(b)
                switch boost.target {
                case .category(let name):
                    b.pointee.target_case = RANKING__V1__BOOST__TARGET_CATEGORY
                    b.pointee.category = arena.cString(name)
                case .brand(let name):
                    b.pointee.target_case = RANKING__V1__BOOST__TARGET_BRAND
                    b.pointee.brand = arena.cString(name)
                case .tag(let name):
                    b.pointee.target_case = RANKING__V1__BOOST__TARGET_TAG
                    b.pointee.tag = arena.cString(name)
                case .itemID(let id):
                    b.pointee.target_case = RANKING__V1__BOOST__TARGET_ITEM_ID
                    b.pointee.item_id = arena.cString(id)
                case .freshWithinDays(let days):
                    b.pointee.target_case = RANKING__V1__BOOST__TARGET_FRESH_WITHIN_DAYS
                    b.pointee.fresh_within_days = UInt32(clamping: days)
                }
                b.pointee.multiply = boost.multiply.map { floatValue($0, arena) }
                b.pointee.add = boost.add
                boosts[index] = b
            }
            (m.pointee.n_boosts, m.pointee.boosts) = (r.boosts.count, boosts)
        }
        if !r.pins.isEmpty {
            let pins = arena.allocate(UnsafeMutablePointer<Ranking__V1__Pin>?.self, count: r.pins.count)
            for (index, pin) in r.pins.enumerated() {
                let p = arena.allocate(Ranking__V1__Pin.self)
                ranking__v1__pin__init(p)
                p.pointee.item_id = arena.cString(pin.itemID)
                p.pointee.position = UInt32(clamping: pin.position)
                pins[index] = p
            }
            (m.pointee.n_pins, m.pointee.pins) = (r.pins.count, pins)
        }
        m.pointee.explain = r.explain ? 1 : 0
        m.pointee.consent = r.consent == .none ? RANKING__V1__CONSENT__CONSENT_NONE : RANKING__V1__CONSENT__CONSENT_FULL
        m.pointee.experiment_arm = arena.cString(r.experimentArm ?? "")
        if !r.context.isEmpty {
            let entries = arena.allocate(
                UnsafeMutablePointer<Ranking__V1__RankRequest__ContextEntry>?.self, count: r.context.count)
            for (index, (key, value)) in r.context.sorted(by: { $0.key < $1.key }).enumerated() {
                let entry = arena.allocate(Ranking__V1__RankRequest__ContextEntry.self)
                ranking__v1__rank_request__context_entry__init(entry)
                entry.pointee.key = arena.cString(key)
                entry.pointee.value = arena.cString(value)
                entries[index] = entry
            }
            (m.pointee.n_context, m.pointee.context) = (r.context.count, entries)
        }
        if let rotation = r.rotation {
            let w = arena.allocate(Ranking__V1__Rotation.self)
            ranking__v1__rotation__init(w)
            w.pointee.rate = rotation.rate.map { floatValue($0, arena) }
            w.pointee.window_seconds = UInt32(clamping: rotation.windowSeconds)
            m.pointee.rotation = w
        }
        if !r.frequencyCaps.isEmpty {
            let caps = arena.allocate(
                UnsafeMutablePointer<Ranking__V1__FrequencyCap>?.self, count: r.frequencyCaps.count)
            for (index, cap) in r.frequencyCaps.enumerated() {
                let c = arena.allocate(Ranking__V1__FrequencyCap.self)
                ranking__v1__frequency_cap__init(c)
                c.pointee.max_impressions = UInt32(clamping: cap.maxImpressions)
                c.pointee.window_seconds = UInt32(clamping: cap.windowSeconds)
                c.pointee.scope =
                    cap.scope == .category
                    ? RANKING__V1__CAP_SCOPE__CAP_SCOPE_CATEGORY : RANKING__V1__CAP_SCOPE__CAP_SCOPE_ITEM
                caps[index] = c
            }
            (m.pointee.n_frequency_caps, m.pointee.frequency_caps) = (r.frequencyCaps.count, caps)
        }
        m.pointee.ignore_event_history = r.ignoreEventHistory ? 1 : 0
    }

    // MARK: Response

    static func fill(_ m: UnsafeMutablePointer<Ranking__V1__RankResponse>, from r: RankResponse, arena: CArena) {
        if !r.items.isEmpty {
            let items = arena.allocate(UnsafeMutablePointer<Ranking__V1__RankedItem>?.self, count: r.items.count)
            for (index, item) in r.items.enumerated() {
                let i = arena.allocate(Ranking__V1__RankedItem.self)
                ranking__v1__ranked_item__init(i)
                i.pointee.item_id = arena.cString(item.itemID)
                i.pointee.score = item.score
                i.pointee.position = UInt32(clamping: item.position)
                i.pointee.category = arena.cString(item.category)
                i.pointee.brand = arena.cString(item.brand)
                if let e = item.explanation {
                    let x = arena.allocate(Ranking__V1__Explanation.self)
                    ranking__v1__explanation__init(x)
                    x.pointee.base_relevance = e.baseRelevance
                    x.pointee.boosted_relevance = e.boostedRelevance
                    (x.pointee.n_applied_boosts, x.pointee.applied_boosts) =
                        (e.appliedBoosts.count, arena.cStrings(e.appliedBoosts))
                    x.pointee.diversity_penalty = e.diversityPenalty
                    x.pointee.dpp_gain = e.dppGain
                    x.pointee.rule = arena.cString(e.rule)
                    (x.pointee.n_constraints, x.pointee.constraints) = (
                        e.constraints.count, arena.cStrings(e.constraints)
                    )
                    x.pointee.reason = arena.cString(e.reason)
                    x.pointee.similar_to_item_id = arena.cString(e.similarToItemID)
                    x.pointee.rotation_penalty = e.rotationPenalty
                    x.pointee.recent_impressions = UInt32(clamping: e.recentImpressions)
                    i.pointee.explanation = x
                }
                items[index] = i
            }
            (m.pointee.n_items, m.pointee.items) = (r.items.count, items)
        }
        m.pointee.snapshot_version = arena.cString(r.snapshotVersion)
        m.pointee.strategy = Ranking__V1__Strategy(rawValue: strategyWireValue(r.strategy))
        m.pointee.experiment = arena.cString(r.experiment)
        m.pointee.experiment_arm = arena.cString(r.experimentArm)
        m.pointee.degraded = r.degraded ? 1 : 0
        m.pointee.degraded_reason = arena.cString(r.degradedReason)
        m.pointee.fewer_than_k = r.fewerThanK ? 1 : 0
        if !r.droppedPins.isEmpty {
            let pins = arena.allocate(UnsafeMutablePointer<Ranking__V1__DroppedPin>?.self, count: r.droppedPins.count)
            for (index, pin) in r.droppedPins.enumerated() {
                let p = arena.allocate(Ranking__V1__DroppedPin.self)
                ranking__v1__dropped_pin__init(p)
                p.pointee.item_id = arena.cString(pin.itemID)
                p.pointee.position = UInt32(clamping: pin.position)
                p.pointee.reason = arena.cString(pin.reason)
                pins[index] = p
            }
            (m.pointee.n_dropped_pins, m.pointee.dropped_pins) = (r.droppedPins.count, pins)
        }
        (m.pointee.n_unknown_item_ids, m.pointee.unknown_item_ids) =
            (r.unknownItemIDs.count, arena.cStrings(r.unknownItemIDs))
        m.pointee.candidates_considered = UInt32(clamping: r.candidatesConsidered)
        m.pointee.session_source = Ranking__V1__SessionSource(rawValue: sessionSourceWireValue(r.sessionSource))
        if !r.eventExclusions.isEmpty {
            let list = arena.allocate(
                UnsafeMutablePointer<Ranking__V1__EventExclusion>?.self, count: r.eventExclusions.count)
            for (index, exclusion) in r.eventExclusions.enumerated() {
                let x = arena.allocate(Ranking__V1__EventExclusion.self)
                ranking__v1__event_exclusion__init(x)
                x.pointee.item_id = arena.cString(exclusion.itemID)
                x.pointee.category = arena.cString(exclusion.category)
                x.pointee.reason = arena.cString(exclusion.reason)
                list[index] = x
            }
            (m.pointee.n_event_exclusions, m.pointee.event_exclusions) = (r.eventExclusions.count, list)
        }
    }

    static func response(from m: Ranking__V1__RankResponse) -> RankResponse {
        var r = RankResponse()
        for index in 0..<m.n_items {
            guard let i = m.items[index]?.pointee else { continue }
            var item = RankResponse.RankedItem(
                itemID: ProtobufCodec.string(i.item_id), score: i.score, position: Int(i.position),
                category: ProtobufCodec.string(i.category), brand: ProtobufCodec.string(i.brand))
            if let x = i.explanation?.pointee {
                var e = RankResponse.Explanation()
                e.baseRelevance = x.base_relevance
                e.boostedRelevance = x.boosted_relevance
                e.appliedBoosts = ProtobufCodec.strings(x.applied_boosts, x.n_applied_boosts)
                e.diversityPenalty = x.diversity_penalty
                e.dppGain = x.dpp_gain
                e.rule = ProtobufCodec.string(x.rule)
                e.constraints = ProtobufCodec.strings(x.constraints, x.n_constraints)
                e.reason = ProtobufCodec.string(x.reason)
                e.similarToItemID = ProtobufCodec.string(x.similar_to_item_id)
                e.rotationPenalty = x.rotation_penalty
                e.recentImpressions = Int(x.recent_impressions)
                item.explanation = e
            }
            r.items.append(item)
        }
        r.snapshotVersion = ProtobufCodec.string(m.snapshot_version)
        r.strategy =
            RankResponse.Strategy.allCases.first { strategyWireValue($0) == m.strategy.rawValue } ?? .unspecified
        r.experiment = ProtobufCodec.string(m.experiment)
        r.experimentArm = ProtobufCodec.string(m.experiment_arm)
        r.degraded = m.degraded != 0
        r.degradedReason = ProtobufCodec.string(m.degraded_reason)
        r.fewerThanK = m.fewer_than_k != 0
        for index in 0..<m.n_dropped_pins {
            guard let p = m.dropped_pins[index]?.pointee else { continue }
            r.droppedPins.append(
                .init(
                    itemID: ProtobufCodec.string(p.item_id), position: Int(p.position),
                    reason: ProtobufCodec.string(p.reason)))
        }
        r.unknownItemIDs = ProtobufCodec.strings(m.unknown_item_ids, m.n_unknown_item_ids)
        r.candidatesConsidered = Int(m.candidates_considered)
        r.sessionSource =
            RankResponse.SessionSource.allCases.first { sessionSourceWireValue($0) == m.session_source.rawValue }
            ?? .unspecified
        for index in 0..<m.n_event_exclusions {
            guard let x = m.event_exclusions[index]?.pointee else { continue }
            r.eventExclusions.append(
                .init(
                    itemID: ProtobufCodec.string(x.item_id), category: ProtobufCodec.string(x.category),
                    reason: ProtobufCodec.string(x.reason)))
        }
        return r
    }

    // MARK: Helpers

    private static func strategyWireValue(_ strategy: RankResponse.Strategy) -> UInt32 {
        switch strategy {
        case .unspecified: RANKING__V1__STRATEGY__STRATEGY_UNSPECIFIED.rawValue
        case .personalized: RANKING__V1__STRATEGY__STRATEGY_PERSONALIZED.rawValue
        case .blended: RANKING__V1__STRATEGY__STRATEGY_BLENDED.rawValue
        case .session: RANKING__V1__STRATEGY__STRATEGY_SESSION.rawValue
        case .popular: RANKING__V1__STRATEGY__STRATEGY_POPULAR.rawValue
        case .nonPersonalized: RANKING__V1__STRATEGY__STRATEGY_NON_PERSONALIZED.rawValue
        case .related: RANKING__V1__STRATEGY__STRATEGY_RELATED.rawValue
        }
    }

    private static func sessionSourceWireValue(_ source: RankResponse.SessionSource) -> UInt32 {
        switch source {
        case .unspecified: RANKING__V1__SESSION_SOURCE__SESSION_SOURCE_UNSPECIFIED.rawValue
        case .none: RANKING__V1__SESSION_SOURCE__SESSION_SOURCE_NONE.rawValue
        case .request: RANKING__V1__SESSION_SOURCE__SESSION_SOURCE_REQUEST.rawValue
        case .eventHistory: RANKING__V1__SESSION_SOURCE__SESSION_SOURCE_EVENT_HISTORY.rawValue
        }
    }

    static func floatValue(_ value: Float, _ arena: CArena) -> UnsafeMutablePointer<Ranking__V1__FloatValue> {
        let wrapper = arena.allocate(Ranking__V1__FloatValue.self)
        ranking__v1__float_value__init(wrapper)
        wrapper.pointee.value = value
        return wrapper
    }

    static func doubleValue(_ value: Double, _ arena: CArena) -> UnsafeMutablePointer<Ranking__V1__DoubleValue> {
        let wrapper = arena.allocate(Ranking__V1__DoubleValue.self)
        ranking__v1__double_value__init(wrapper)
        wrapper.pointee.value = value
        return wrapper
    }
}

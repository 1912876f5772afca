import Foundation
import RankingModel

/// A `ranking.v1.RankRequest` in the protobuf JSON mapping (field names in proto `snake_case` or
/// `lowerCamelCase`, enums by name, `FloatValue`/`DoubleValue` as a number or `{"value": x}`): the
/// rules file of `rankctl rank-batch`. Unknown fields are errors naming the field, so a typo
/// never silently drops a rule.
enum RulesJSON {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func parse(_ data: Data) throws -> RankRequest {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw Failure(description: "rules: not JSON: \(error.localizedDescription)")
        }
        return try request(try dictionary(object, "rules"))
    }

    static func request(_ o: [String: Any]) throws -> RankRequest {
        var r = RankRequest()
        for (key, value) in o {
            let field = "rules.\(key)"
            switch snake(key) {
            case "user_id": r.userID = try string(value, field)
            case "k": r.k = try int(value, field)
            case "recent_item_ids": r.recentItemIDs = try strings(value, field)
            case "candidate_pool": r.candidatePool = try int(value, field)
            case "filter": r.filter = try filter(try dictionary(value, field))
            case "diversity": r.diversity = try diversity(try dictionary(value, field))
            case "boosts": r.boosts = try array(value, field).enumerated().map { try boost($1, "\(field)[\($0)]") }
            case "pins":
                r.pins = try array(value, field).enumerated().map { index, element in
                    let p = try dictionary(element, "\(field)[\(index)]")
                    return .init(
                        itemID: try string(p["item_id"] ?? p["itemId"] ?? "", "\(field)[\(index)].item_id"),
                        position: try int(p["position"] ?? 0, "\(field)[\(index)].position"))
                }
            case "explain": r.explain = try bool(value, field)
            case "consent":
                switch try string(value, field) {
                case "CONSENT_NONE", "none": r.consent = .none
                case "CONSENT_FULL", "CONSENT_UNSPECIFIED", "full": r.consent = .full
                case let other: throw Failure(description: "\(field): unknown value '\(other)'")
                }
            case "experiment_arm": r.experimentArm = try string(value, field)
            case "context":
                r.context = try dictionary(value, field).mapValues { try string($0, field) }
            case "rotation", "frequency_caps", "ignore_event_history": throw needsRecordedEvents(field)
            default: throw Failure(description: "\(field): unknown field")
            }
        }
        return r
    }

    private static func filter(_ o: [String: Any]) throws -> RankRequest.Filter {
        var f = RankRequest.Filter()
        for (key, value) in o {
            let field = "rules.filter.\(key)"
            switch snake(key) {
            case "include_categories": f.includeCategories = try strings(value, field)
            case "exclude_categories": f.excludeCategories = try strings(value, field)
            case "include_brands": f.includeBrands = try strings(value, field)
            case "exclude_brands": f.excludeBrands = try strings(value, field)
            case "in_stock_only": f.inStockOnly = try bool(value, field)
            case "min_price": f.minPrice = try wrapped(value, field)
            case "max_price": f.maxPrice = try wrapped(value, field)
            case "tags_any": f.tagsAny = try strings(value, field)
            case "exclude_item_ids": f.excludeItemIDs = try strings(value, field)
            case "exclude_purchased_within_seconds": throw needsRecordedEvents(field)
            default: throw Failure(description: "\(field): unknown field")
            }
        }
        return f
    }

    private static func diversity(_ o: [String: Any]) throws -> RankRequest.Diversity {
        var d = RankRequest.Diversity()
        for (key, value) in o {
            let field = "rules.diversity.\(key)"
            switch snake(key) {
            case "method":
                let name = try string(value, field)
                let short = name.hasPrefix("DIVERSITY_METHOD_") ? String(name.dropFirst(17)).lowercased() : name
                guard let method = RankRequest.DiversityMethod(rawValue: short) else {
                    throw Failure(description: "\(field): unknown value '\(name)'")
                }
                d.method = method
            case "tradeoff": d.tradeoff = Float(try wrapped(value, field))
            case "max_per_category": d.maxPerCategory = try int(value, field)
            case "max_per_brand": d.maxPerBrand = try int(value, field)
            case "spread_window": d.spreadWindow = try int(value, field)
            case "spread_max_per_category": d.spreadMaxPerCategory = try int(value, field)
            default: throw Failure(description: "\(field): unknown field")
            }
        }
        return d
    }

    private static func boost(_ value: Any, _ field: String) throws -> RankRequest.Boost {
        let o = try dictionary(value, field)
        var target: RankRequest.Boost.Target?
        var multiply: Float?
        var add: Float = 0
        for (key, value) in o {
            let name = "\(field).\(key)"
            switch snake(key) {
            case "category": target = .category(try string(value, name))
            case "brand": target = .brand(try string(value, name))
            case "tag": target = .tag(try string(value, name))
            case "item_id": target = .itemID(try string(value, name))
            case "fresh_within_days": target = .freshWithinDays(try int(value, name))
            case "multiply": multiply = Float(try wrapped(value, name))
            case "add": add = Float(try number(value, name))
            default: throw Failure(description: "\(name): unknown field")
            }
        }
        guard let target else {
            throw Failure(description: "\(field): needs one of category, brand, tag, item_id, fresh_within_days")
        }
        return .init(target: target, multiply: multiply, add: add)
    }

    /// A Rank field that only acts on events recorded in a running rankd (rotation, caps, purchases,
    /// session history): an offline batch has none, so the rule would silently do nothing.
    private static func needsRecordedEvents(_ field: String) -> Failure {
        Failure(
            description:
                "\(field): acts on events recorded by a running rankd; offline rank-batch has none (use the RankBatch RPC)"
        )
    }

    // MARK: Values

    /// lowerCamelCase → snake_case (snake_case is unchanged).
    private static func snake(_ key: String) -> String {
        var out = ""
        for character in key {
            if character.isUppercase {
                out += "_" + character.lowercased()
            } else {
                out.append(character)
            }
        }
        return out
    }

    private static func dictionary(_ value: Any, _ field: String) throws -> [String: Any] {
        guard let o = value as? [String: Any] else { throw Failure(description: "\(field): expected an object") }
        return o
    }

    private static func array(_ value: Any, _ field: String) throws -> [Any] {
        guard let a = value as? [Any] else { throw Failure(description: "\(field): expected an array") }
        return a
    }

    private static func string(_ value: Any, _ field: String) throws -> String {
        guard let s = value as? String else { throw Failure(description: "\(field): expected a string") }
        return s
    }

    private static func strings(_ value: Any, _ field: String) throws -> [String] {
        try array(value, field).enumerated().map { try string($1, "\(field)[\($0)]") }
    }

    private static func number(_ value: Any, _ field: String) throws -> Double {
        guard let n = value as? NSNumber, !(value is Bool) else {
            throw Failure(description: "\(field): expected a number")
        }
        return n.doubleValue
    }

    private static func int(_ value: Any, _ field: String) throws -> Int {
        let n = try number(value, field)
        guard n >= 0, n == n.rounded(), n <= Double(UInt32.max) else {
            throw Failure(description: "\(field): expected a whole number ≥ 0, got \(n)")
        }
        return Int(n)
    }

    private static func bool(_ value: Any, _ field: String) throws -> Bool {
        guard let b = value as? Bool else { throw Failure(description: "\(field): expected true or false") }
        return b
    }

    /// A `FloatValue`/`DoubleValue`: a bare number or `{"value": x}`.
    private static func wrapped(_ value: Any, _ field: String) throws -> Double {
        if let o = value as? [String: Any] {
            return try number(o["value"] ?? 0, "\(field).value")
        }
        return try number(value, field)
    }
}

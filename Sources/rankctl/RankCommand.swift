import ArgumentParser
import CommandSupport
import Foundation
import GRPCClient
import GRPCCore
import NIOCore
import NIOPosix
import RankingAPI

/// `rankctl rank`: one Rank call against a running rankd, printed as a table (or JSON).
struct RankCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rank",
        abstract: "Ask a running rankd for a ranking and print it.",
        discussion: """
            Examples:
              rankctl rank --user u_42 --k 10 --explain
              rankctl rank --user u_42 --recent sku-1,sku-9 --category "Running Shoes" --method dpp
              rankctl rank --consent none --pin sku-7@0 --boost category:Trail*1.5 --json
              rankctl rank --user u_42 --explain --rotation 0.2/3600 --cap 3/86400 --cap category:5/3600 \
                  --exclude-purchased 2592000
            """)

    @Option(help: "rankd address, host:port.")
    var server = "127.0.0.1:50051"

    @Option(help: "User id (empty: anonymous).")
    var user = ""

    @Option(help: "Items wanted (0: the snapshot's default).")
    var k = 0

    @Option(help: "Recently viewed item ids, newest first, comma-separated.")
    var recent = ""

    @Option(help: "Candidates retrieved before re-ranking (0: default).")
    var pool = 0

    @Option(name: .customLong("category"), help: "Only these categories (repeatable).")
    var categories: [String] = []

    @Option(name: .customLong("exclude-category"), help: "Never these categories (repeatable).")
    var excludeCategories: [String] = []

    @Option(name: .customLong("brand"), help: "Only these brands (repeatable).")
    var brands: [String] = []

    @Option(name: .customLong("exclude-brand"), help: "Never these brands (repeatable).")
    var excludeBrands: [String] = []

    @Flag(help: "Only items in stock.")
    var inStock = false

    @Option(help: "Minimum price.")
    var minPrice: Double?

    @Option(help: "Maximum price.")
    var maxPrice: Double?

    @Option(name: .customLong("tag"), help: "Only items with one of these tags (repeatable).")
    var tags: [String] = []

    @Option(name: .customLong("exclude-item"), help: "Never these item ids (repeatable).")
    var excludeItems: [String] = []

    @Option(help: "Diversification: none, mmr or dpp (default: the snapshot's).")
    var method: String?

    @Option(help: "Relevance/diversity trade-off in [0, 1].")
    var tradeoff: Float?

    @Option(help: "At most this many items per category.")
    var maxPerCategory = 0

    @Option(help: "At most this many items per brand.")
    var maxPerBrand = 0

    @Option(help: "Spread rule as MAX/WINDOW: at most MAX of one category in any WINDOW positions.")
    var spread: String?

    @Option(name: .customLong("pin"), help: "Pin ITEM@POSITION (0-based, repeatable).")
    var pins: [String] = []

    @Option(
        name: .customLong("boost"),
        help: "Boost KIND:NAME*FACTOR or KIND:NAME+ADD; KIND is category, brand, tag, item or fresh (fresh:DAYS*F).")
    var boosts: [String] = []

    @Option(help: "Rotation of items shown recently (recorded impressions) as RATE/WINDOW_SECONDS, e.g. 0.1/7200.")
    var rotation: String?

    @Option(
        name: .customLong("cap"),
        help: "Frequency cap MAX/WINDOW_SECONDS per item, or category:MAX/WINDOW_SECONDS per category (repeatable).")
    var caps: [String] = []

    @Option(help: "Leave out items the user bought (recorded purchases) within this many seconds.")
    var excludePurchased = 0

    @Flag(help: "Do not use the user's recorded interactions as session signals.")
    var ignoreEventHistory = false

    @Option(help: "full or none.")
    var consent = "full"

    @Option(help: "Force an experiment arm (QA).")
    var arm: String?

    @Flag(help: "Ask for an explanation of every item.")
    var explain = false

    @Option(help: "Deadline in milliseconds.")
    var timeoutMs = 5000

    @Flag(help: "Print the response as JSON.")
    var json = false

    @OptionGroup(title: "TLS")
    var tls: TLSClientFlags

    func run() async throws {
        try await call(path: "/ranking.v1.Ranker/Rank", message: RankCodec.encodeRequest(try makeRequest()))
    }

    /// Sends one unary call whose answer is a `RankResponse` (Rank, Related) and prints it.
    func call(path: String, message: ByteBuffer) async throws {
        let (host, port) = try parseAddress(server)
        let credentials = try tls.credentials()
        let group = MultiThreadedEventLoopGroup.singleton
        let connection: GRPCClientConnection
        do {
            connection = try await GRPCClientConnection.connect(host: host, port: port, group: group, tls: credentials)
        } catch {
            throw CommandFailure("cannot connect to \(server): \(error)")
        }
        let started = ContinuousClock.now
        let result = try await connection.unary(
            path: path, request: message,
            timeout: .milliseconds(Int64(timeoutMs))
        ).get()
        let elapsed = ContinuousClock.now - started
        await connection.close()
        let response: RankResponse
        do {
            response = try RankCodec.decodeResponse(try result.unaryResponse())
        } catch {
            throw CommandFailure("\(server): \(error)")
        }
        if json {
            print(try Self.json(response))
        } else {
            print(Self.table(response, elapsed: elapsed))
        }
    }

    func makeRequest() throws -> RankRequest {
        var request = RankRequest()
        request.userID = user
        request.k = k
        request.recentItemIDs = recent.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        request.candidatePool = pool
        request.filter.includeCategories = categories
        request.filter.excludeCategories = excludeCategories
        request.filter.includeBrands = brands
        request.filter.excludeBrands = excludeBrands
        request.filter.inStockOnly = inStock
        request.filter.minPrice = minPrice
        request.filter.maxPrice = maxPrice
        request.filter.tagsAny = tags
        request.filter.excludeItemIDs = excludeItems
        if let method {
            guard let parsed = RankRequest.DiversityMethod(rawValue: method), parsed != .unspecified else {
                throw ValidationError("--method '\(method)': expected none, mmr or dpp")
            }
            request.diversity.method = parsed
        }
        request.diversity.tradeoff = tradeoff
        request.diversity.maxPerCategory = maxPerCategory
        request.diversity.maxPerBrand = maxPerBrand
        if let spread {
            let parts = spread.split(separator: "/")
            guard parts.count == 2, let max = Int(parts[0]), let window = Int(parts[1]) else {
                throw ValidationError("--spread '\(spread)': expected MAX/WINDOW, e.g. 2/5")
            }
            request.diversity.spreadMaxPerCategory = max
            request.diversity.spreadWindow = window
        }
        request.pins = try pins.map { text in
            guard let at = text.lastIndex(of: "@"), let position = Int(text[text.index(after: at)...]) else {
                throw ValidationError("--pin '\(text)': expected ITEM@POSITION, e.g. sku-7@0")
            }
            return .init(itemID: String(text[..<at]), position: position)
        }
        request.boosts = try boosts.map(Self.parseBoost)
        switch consent {
        case "full": request.consent = .full
        case "none": request.consent = .none
        default: throw ValidationError("--consent '\(consent)': expected full or none")
        }
        request.experimentArm = arm
        request.explain = explain
        request.filter.excludePurchasedWithinSeconds = excludePurchased
        request.ignoreEventHistory = ignoreEventHistory
        if let rotation {
            let parts = rotation.split(separator: "/")
            guard parts.count == 2, let rate = Float(parts[0]), let window = Int(parts[1]) else {
                throw ValidationError("--rotation '\(rotation)': expected RATE/WINDOW_SECONDS, e.g. 0.1/7200")
            }
            request.rotation = .init(rate: rate, windowSeconds: window)
        }
        request.frequencyCaps = try caps.map { text in
            let scope: RankRequest.FrequencyCap.Scope = text.hasPrefix("category:") ? .category : .item
            let parts = text.dropFirst(scope == .category ? "category:".count : 0).split(separator: "/")
            guard parts.count == 2, let max = Int(parts[0]), let window = Int(parts[1]) else {
                throw ValidationError("--cap '\(text)': expected MAX/WINDOW_SECONDS or category:MAX/WINDOW_SECONDS")
            }
            return .init(maxImpressions: max, windowSeconds: window, scope: scope)
        }
        request.context = ["channel": "rankctl"]
        return request
    }

    static func parseBoost(_ text: String) throws -> RankRequest.Boost {
        guard let colon = text.firstIndex(of: ":") else {
            throw ValidationError("--boost '\(text)': expected KIND:NAME*FACTOR or KIND:NAME+ADD")
        }
        let kind = text[..<colon]
        var rest = text[text.index(after: colon)...]
        var multiply: Float?
        var add: Float = 0
        if let star = rest.lastIndex(of: "*"), let factor = Float(rest[rest.index(after: star)...]) {
            multiply = factor
            rest = rest[..<star]
        } else if let sign = rest.lastIndex(where: { $0 == "+" || $0 == "-" }), let value = Float(rest[sign...]) {
            add = value
            rest = rest[..<sign]
        } else {
            throw ValidationError("--boost '\(text)': missing *FACTOR or +ADD")
        }
        let name = String(rest)
        let target: RankRequest.Boost.Target
        switch kind {
        case "category": target = .category(name)
        case "brand": target = .brand(name)
        case "tag": target = .tag(name)
        case "item": target = .itemID(name)
        case "fresh":
            guard let days = Int(name) else { throw ValidationError("--boost '\(text)': fresh takes a number of days") }
            target = .freshWithinDays(days)
        default:
            throw ValidationError("--boost '\(text)': kind must be category, brand, tag, item or fresh")
        }
        return .init(target: target, multiply: multiply, add: add)
    }

    static func table(_ response: RankResponse, elapsed: Duration) -> String {
        var lines: [String] = []
        var header = "snapshot \(response.snapshotVersion) · strategy \(response.strategy.rawValue)"
        if !response.experimentArm.isEmpty { header += " · \(response.experiment)=\(response.experimentArm)" }
        header += " · \(response.items.count) items from \(response.candidatesConsidered) candidates · \(elapsed)"
        switch response.sessionSource {
        case .request: header += " · session from the request"
        case .eventHistory: header += " · session from recorded events"
        default: break
        }
        lines.append(header)
        for exclusion in response.eventExclusions {
            let what = exclusion.itemID.isEmpty ? "category \(exclusion.category)" : exclusion.itemID
            lines.append("kept out by events: \(what): \(exclusion.reason)")
        }
        if response.degraded { lines.append("degraded: \(response.degradedReason)") }
        if response.fewerThanK { lines.append("fewer than k items satisfied the rules") }
        for pin in response.droppedPins { lines.append("dropped pin \(pin.itemID)@\(pin.position): \(pin.reason)") }
        if !response.unknownItemIDs.isEmpty {
            lines.append("unknown item ids (skipped): \(response.unknownItemIDs.joined(separator: ", "))")
        }
        let rows = response.items.map { item in
            [
                "\(item.position)", item.itemID, item.category, item.brand, String(format: "%.4f", item.score),
                item.explanation.map(Self.reason) ?? "",
            ]
        }
        let titles = ["pos", "item", "category", "brand", "score", "reason"]
        let widths = titles.indices.map { column in
            ([titles[column]] + rows.map { $0[column] }).map(\.count).max() ?? 0
        }
        func format(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        lines.append(format(titles))
        lines.append(contentsOf: rows.map(format))
        return lines.joined(separator: "\n")
    }

    /// The reason column: the rule, the reason, and rotation when it took something off.
    static func reason(_ explanation: RankResponse.Explanation) -> String {
        var text = "\(explanation.rule): \(explanation.reason)"
        if explanation.rotationPenalty > 0 {
            text += String(
                format: " · rotation −%.1f%% (shown %d× recently)", explanation.rotationPenalty * 100,
                explanation.recentImpressions)
        }
        return text
    }

    static func json(_ response: RankResponse) throws -> String {
        let items: [[String: Any]] = response.items.map { item in
            var object: [String: Any] = [
                "item_id": item.itemID, "score": Double(item.score), "position": item.position,
                "category": item.category, "brand": item.brand,
            ]
            if let e = item.explanation {
                object["explanation"] =
                    [
                        "base_relevance": Double(e.baseRelevance), "boosted_relevance": Double(e.boostedRelevance),
                        "applied_boosts": e.appliedBoosts, "diversity_penalty": Double(e.diversityPenalty),
                        "dpp_gain": Double(e.dppGain), "rule": e.rule, "constraints": e.constraints, "reason": e.reason,
                        "similar_to_item_id": e.similarToItemID,
                        "rotation_penalty": Double(e.rotationPenalty), "recent_impressions": e.recentImpressions,
                    ] as [String: Any]
            }
            return object
        }
        let object: [String: Any] = [
            "items": items, "snapshot_version": response.snapshotVersion, "strategy": response.strategy.rawValue,
            "experiment": response.experiment, "experiment_arm": response.experimentArm,
            "degraded": response.degraded, "degraded_reason": response.degradedReason,
            "fewer_than_k": response.fewerThanK,
            "dropped_pins": response.droppedPins.map {
                ["item_id": $0.itemID, "position": $0.position, "reason": $0.reason] as [String: Any]
            },
            "unknown_item_ids": response.unknownItemIDs, "candidates_considered": response.candidatesConsidered,
            "session_source": response.sessionSource.rawValue,
            "event_exclusions": response.eventExclusions.map {
                ["item_id": $0.itemID, "category": $0.category, "reason": $0.reason]
            },
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

/// A failure that is not a usage error: printed as `Error: <message>`, exit status 1, no usage text.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Splits `host:port` (`[v6]:port`).
func parseAddress(_ text: String) throws -> (host: String, port: Int) {
    do {
        let address = try HostPort(parsing: text)
        return (address.host, address.port)
    } catch {
        throw ValidationError("'\(text)': \(error)")
    }
}

public import Foundation

/// A request mix read from a scenario file (JSON): weighted request templates.
///
/// ```json
/// { "name": "echo-mixed", "seed": 7, "poolSize": 4096,
///   "requests": [
///     { "weight": 9, "echo": { "payloadBytes": 0 } },
///     { "weight": 1, "echo": { "payloadBytes": 4096, "delayMs": 2, "text": "big" } } ] }
/// ```
///
/// Each template names exactly one request kind: `echo` (the test service
/// `rankd.testing.v1.Echo/Unary`, served by `rankd --enable-test-services`) or `rank`
/// (`ranking.v1.Ranker/Rank`, see ``Scenario/Rank``); see docs/LOADTEST.md.
public struct Scenario: Sendable, Equatable, Decodable {
    /// Shown in reports.
    public var name: String
    /// Seed for the request mix (which template each pooled request comes from).
    public var seed: UInt64
    /// Number of pre-encoded requests; the run cycles through them.
    public var poolSize: Int
    public var requests: [Template]
    /// Where relative file paths in templates are resolved: the scenario file's directory.
    public var baseDirectory: String?

    /// One weighted request template.
    public struct Template: Sendable, Equatable, Decodable {
        /// Relative weight, > 0.
        public var weight: Double
        public var echo: Echo?
        public var rank: Rank?

        public init(weight: Double, echo: Scenario.Echo? = nil, rank: Scenario.Rank? = nil) {
            self.weight = weight
            self.echo = echo
            self.rank = rank
        }

        private enum CodingKeys: String, CodingKey, CaseIterable { case weight, echo, rank }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            try rejectUnknownKeys(decoder, known: CodingKeys.self)
            weight = try container.decodeIfPresent(Double.self, forKey: .weight) ?? 1
            echo = try container.decodeIfPresent(Scenario.Echo.self, forKey: .echo)
            rank = try container.decodeIfPresent(Scenario.Rank.self, forKey: .rank)
        }
    }

    /// `rankd.testing.v1.EchoRequest`.
    public struct Echo: Sendable, Equatable, Decodable {
        /// Size of the `payload` bytes field (zero-filled).
        public var payloadBytes: Int
        /// `delay_ms`: the server waits this long before answering.
        public var delayMs: UInt32
        public var text: String

        public init(payloadBytes: Int = 0, delayMs: UInt32 = 0, text: String = "") {
            self.payloadBytes = payloadBytes
            self.delayMs = delayMs
            self.text = text
        }

        private enum CodingKeys: String, CodingKey, CaseIterable { case payloadBytes, delayMs, text }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            try rejectUnknownKeys(decoder, known: CodingKeys.self)
            payloadBytes = try container.decodeIfPresent(Int.self, forKey: .payloadBytes) ?? 0
            delayMs = try container.decodeIfPresent(UInt32.self, forKey: .delayMs) ?? 0
            text = try container.decodeIfPresent(String.self, forKey: .text) ?? ""
        }
    }

    /// The default mix: one empty Echo request (the request used to validate against h2load).
    public static let emptyEcho = Scenario(
        name: "echo-empty", seed: 1, poolSize: 1, requests: [Template(weight: 1, echo: Echo())])

    public init(name: String, seed: UInt64, poolSize: Int, requests: [Template], baseDirectory: String? = nil) {
        self.name = name
        self.seed = seed
        self.poolSize = poolSize
        self.requests = requests
        self.baseDirectory = baseDirectory
    }

    private enum CodingKeys: String, CodingKey, CaseIterable { case name, seed, poolSize, requests }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        try rejectUnknownKeys(decoder, known: CodingKeys.self)
        name = try container.decodeIfPresent(String.self, forKey: .name) ?? "unnamed"
        seed = try container.decodeIfPresent(UInt64.self, forKey: .seed) ?? 1
        poolSize = try container.decodeIfPresent(Int.self, forKey: .poolSize) ?? 4096
        requests = try container.decode([Template].self, forKey: .requests)
    }

    /// Parses and validates a scenario.
    ///
    /// - Throws: ``ScenarioError`` naming the file and the field (`requests[1].echo.payloadBytes`).
    public static func parse(_ data: Data, source: String) throws(ScenarioError) -> Scenario {
        let scenario: Scenario
        do {
            scenario = try JSONDecoder().decode(Scenario.self, from: data)
        } catch let error as ScenarioError {
            throw ScenarioError(source: source, field: error.field, problem: error.problem)
        } catch let DecodingError.dataCorrupted(context) {
            throw ScenarioError(source: source, field: fieldPath(context.codingPath), problem: describe(context))
        } catch let DecodingError.keyNotFound(key, context) {
            throw ScenarioError(
                source: source, field: fieldPath(context.codingPath + [key]), problem: "missing required field")
        } catch let DecodingError.typeMismatch(type, context) {
            throw ScenarioError(
                source: source, field: fieldPath(context.codingPath), problem: "expected \(typeName(type))")
        } catch let DecodingError.valueNotFound(type, context) {
            throw ScenarioError(
                source: source, field: fieldPath(context.codingPath), problem: "expected \(typeName(type)), got null")
        } catch {
            throw ScenarioError(source: source, field: "", problem: "\(error)")
        }
        try scenario.validate(source: source)
        return scenario
    }

    /// Reads and parses a scenario file.
    public static func load(path: String) throws(ScenarioError) -> Scenario {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ScenarioError(source: path, field: "", problem: "cannot read: \(error.localizedDescription)")
        }
        var scenario = try parse(data, source: path)
        scenario.baseDirectory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return scenario
    }

    /// Largest payload a template may ask for: rankd's default receive limit is 4 MiB.
    public static let maxPayloadBytes = 4 << 20

    private func validate(source: String) throws(ScenarioError) {
        func fail(_ field: String, _ problem: String) -> ScenarioError {
            ScenarioError(source: source, field: field, problem: problem)
        }
        guard !requests.isEmpty else { throw fail("requests", "needs at least one request template") }
        guard (1...1_000_000).contains(poolSize) else { throw fail("poolSize", "must be 1...1000000, got \(poolSize)") }
        for (index, template) in requests.enumerated() {
            let field = "requests[\(index)]"
            guard template.weight > 0, template.weight.isFinite else {
                throw fail("\(field).weight", "must be a positive number, got \(template.weight)")
            }
            switch (template.echo, template.rank) {
            case (let echo?, nil):
                guard (0...Self.maxPayloadBytes).contains(echo.payloadBytes) else {
                    throw fail(
                        "\(field).echo.payloadBytes", "must be 0...\(Self.maxPayloadBytes), got \(echo.payloadBytes)")
                }
            case (nil, let rank?):
                try rank.validate(field: "\(field).rank", fail: fail)
            case (nil, nil):
                throw fail(field, "names no request kind (expected \"echo\" or \"rank\")")
            case (.some, .some):
                throw fail(field, "names two request kinds: give \"echo\" or \"rank\", not both")
            }
        }
    }

    private static func describe(_ context: DecodingError.Context) -> String {
        if let underlying = context.underlyingError as? NSError,
            let detail = underlying.userInfo[NSDebugDescriptionErrorKey] as? String
        {
            return "not valid JSON: \(detail)"
        }
        return context.debugDescription
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Double.Type: "a number"
        case is Int.Type, is UInt32.Type, is UInt64.Type: "a whole number"
        case is [Template].Type: "an array of request templates"
        default: "\(type)"
        }
    }
}

/// A scenario file is unusable: says which file, which field and why.
public struct ScenarioError: Error, Equatable, CustomStringConvertible {
    public var source: String
    public var field: String
    public var problem: String

    public var description: String {
        field.isEmpty ? "scenario \(source): \(problem)" : "scenario \(source): field '\(field)': \(problem)"
    }
}

/// Unknown keys are almost always typos (`payloadbytes`); silently ignoring them would run a
/// different mix than the author meant.
private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

func rejectUnknownKeys<Known: CodingKey & CaseIterable>(
    _ decoder: any Decoder, known: Known.Type
) throws {
    let container = try decoder.container(keyedBy: AnyKey.self)
    let names = Set(Known.allCases.map(\.stringValue))
    for key in container.allKeys where !names.contains(key.stringValue) {
        throw ScenarioError(
            source: "", field: fieldPath(decoder.codingPath + [key]),
            problem: "unknown field (known: \(names.sorted().joined(separator: ", ")))")
    }
}

/// `requests[1].echo.payloadBytes` for a decoder's coding path.
private func fieldPath(_ keys: [any CodingKey]) -> String {
    var result = ""
    for key in keys {
        if let index = key.intValue {
            result += "[\(index)]"
        } else {
            result += result.isEmpty ? key.stringValue : ".\(key.stringValue)"
        }
    }
    return result
}

public import NIOCore
import RankingAPI
import SeededRandom

/// A pre-encoded request: the method path and the serialized message.
public struct PooledRequest: Sendable {
    public var path: String
    public var message: ByteBuffer
}

/// Requests encoded ahead of the run so the generator's per-request cost is a lookup, not an
/// encode. Request `i` of a run is `requests[i % count]`; templates appear in proportion to
/// their weights (the pool is drawn with a seeded generator, so a scenario reproduces).
///
/// Immutable; thread-safe (`ByteBuffer` is copy-on-write and only read).
public struct RequestPool: Sendable {
    public let requests: [PooledRequest]
    /// How many pooled requests came from each template (index-aligned with the scenario).
    public let templateCounts: [Int]

    /// Draws and encodes the pool.
    ///
    /// - Throws: ``ScenarioError`` when a Rank template's id files cannot be read.
    public init(scenario: Scenario, allocator: ByteBufferAllocator = ByteBufferAllocator()) throws(ScenarioError) {
        var random = SplitMix64(seed: scenario.seed)
        let totalWeight = scenario.requests.reduce(0) { $0 + $1.weight }
        var cumulative: [Double] = []
        var running = 0.0
        for template in scenario.requests {
            running += template.weight / totalWeight
            cumulative.append(running)
        }
        // An Echo template is one fixed message, encoded once and shared; a Rank template draws
        // a new user, session and flags for every pooled request.
        var sources: [Source] = []
        for (index, template) in scenario.requests.enumerated() {
            if let rank = template.rank {
                do {
                    sources.append(
                        .rank(
                            try RankRequestGenerator(
                                rank, field: "requests[\(index)].rank", baseDirectory: scenario.baseDirectory)))
                } catch {
                    throw ScenarioError(source: scenario.name, field: error.field, problem: error.problem)
                }
            } else if let echo = template.echo {
                let request = EchoCodec.Request(
                    text: echo.text, payload: [UInt8](repeating: 0, count: echo.payloadBytes),
                    delayMilliseconds: echo.delayMs)
                sources.append(
                    .fixed(
                        PooledRequest(
                            path: Self.echoPath, message: EchoCodec.encodeRequest(request, allocator: allocator))))
            } else {
                preconditionFailure("Scenario.validate admits only echo and rank templates")
            }
        }
        var counts = [Int](repeating: 0, count: scenario.requests.count)
        var requests: [PooledRequest] = []
        requests.reserveCapacity(scenario.poolSize)
        for _ in 0..<scenario.poolSize {
            let u = random.nextUnitInterval()
            let index = cumulative.firstIndex { u <= $0 } ?? (cumulative.count - 1)
            counts[index] += 1
            switch sources[index] {
            case .fixed(let request):
                requests.append(request)
            case .rank(let generator):
                let request = generator.make(using: &random)
                requests.append(
                    PooledRequest(
                        path: Self.rankPath, message: RankCodec.encodeRequest(request, allocator: allocator)))
            }
        }
        self.requests = requests
        self.templateCounts = counts
    }

    private enum Source {
        case fixed(PooledRequest)
        case rank(RankRequestGenerator)
    }

    /// The `index`-th request of a run.
    @inlinable
    public subscript(index: Int) -> PooledRequest { requests[index % requests.count] }

    public static let echoPath = "/rankd.testing.v1.Echo/Unary"
    public static let rankPath = "/ranking.v1.Ranker/Rank"
}

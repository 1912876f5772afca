public import NIOCore
import RankingAPI

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

    public init(scenario: Scenario, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        var random = SeededRandom(seed: scenario.seed)
        let totalWeight = scenario.requests.reduce(0) { $0 + $1.weight }
        var cumulative: [Double] = []
        var running = 0.0
        for template in scenario.requests {
            running += template.weight / totalWeight
            cumulative.append(running)
        }
        // Each template is encoded once; the pool shares the bytes.
        let encoded = scenario.requests.map { Self.encode($0, allocator: allocator) }
        var counts = [Int](repeating: 0, count: scenario.requests.count)
        var requests: [PooledRequest] = []
        requests.reserveCapacity(scenario.poolSize)
        for _ in 0..<scenario.poolSize {
            let u = random.nextUnitInterval()
            let index = cumulative.firstIndex { u <= $0 } ?? (cumulative.count - 1)
            counts[index] += 1
            requests.append(encoded[index])
        }
        self.requests = requests
        self.templateCounts = counts
    }

    /// The `index`-th request of a run.
    @inlinable
    public subscript(index: Int) -> PooledRequest { requests[index % requests.count] }

    public static let echoPath = "/rankd.testing.v1.Echo/Unary"

    private static func encode(_ template: Scenario.Template, allocator: ByteBufferAllocator) -> PooledRequest {
        guard let echo = template.echo else { preconditionFailure("Scenario.validate admits only echo templates") }
        let request = EchoCodec.Request(
            text: echo.text, payload: [UInt8](repeating: 0, count: echo.payloadBytes),
            delayMilliseconds: echo.delayMs)
        return PooledRequest(path: echoPath, message: EchoCodec.encodeRequest(request, allocator: allocator))
    }
}

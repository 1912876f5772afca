import Foundation
public import Instrumentation
import NIOConcurrencyHelpers
public import Tracing

/// A swift-distributed-tracing `Tracer` that propagates W3C `traceparent` and exports finished
/// spans to an OpenTelemetry collector over OTLP/HTTP (JSON encoding, `POST /v1/traces`), in
/// batches, from a background thread.
///
/// Sampling is parent-based: a call whose `traceparent` says sampled is recorded, one that says
/// not sampled is not; a call without one is recorded with probability `sampleRatio`. Unrecorded
/// spans cost an id and a context, nothing is queued for them.
///
/// rankd wires it only with `--otlp-endpoint`; libraries see the `Tracer` protocol.
public final class OTLPTracer: Tracer, Sendable {
    public typealias Span = OTLPSpan

    let exporter: OTLPExporter
    private let sampleRatio: Double

    /// - Parameters:
    ///   - endpoint: the collector's traces URL, e.g. `http://127.0.0.1:4318/v1/traces`.
    ///   - serviceName: the `service.name` resource attribute.
    ///   - sampleRatio: share of calls without a sampled parent to record (0…1).
    public init(
        endpoint: OTLPEndpoint, serviceName: String, sampleRatio: Double = 1,
        onError: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.exporter = OTLPExporter(endpoint: endpoint, serviceName: serviceName, onError: onError)
        self.sampleRatio = sampleRatio
    }

    /// Sends what is queued and stops the export thread.
    public func shutdown() { exporter.shutdown() }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> InstrumentationContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> OTLPSpan {
        var context = context()
        let parent = context[W3CTraceContextKey.self]
        let sampled = parent?.sampled ?? (sampleRatio >= 1 || Double.random(in: 0..<1) < sampleRatio)
        let own = W3CTraceContext(
            traceID: parent?.traceID ?? Self.randomID(16), spanID: Self.randomID(8), sampled: sampled)
        context[W3CTraceContextKey.self] = own
        return OTLPSpan(
            name: operationName, kind: kind, context: context, trace: own, parentSpanID: parent?.spanID,
            start: instant().nanosecondsSinceEpoch, exporter: sampled ? exporter : nil)
    }

    public func forceFlush() { exporter.flush() }

    public func extract<Carrier, Extract: Extractor>(
        _ carrier: Carrier, into context: inout InstrumentationContext, using extractor: Extract
    ) where Extract.Carrier == Carrier {
        if let header = extractor.extract(key: "traceparent", from: carrier),
            let parent = W3CTraceContext(traceparent: header)
        {
            context[W3CTraceContextKey.self] = parent
        }
    }

    public func inject<Carrier, Inject: Injector>(
        _ context: InstrumentationContext, into carrier: inout Carrier, using injector: Inject
    ) where Inject.Carrier == Carrier {
        if let trace = context[W3CTraceContextKey.self] {
            injector.inject(trace.traceparent, forKey: "traceparent", into: &carrier)
        }
    }

    private static func randomID(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        while true {
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if bytes.contains(where: { $0 != 0 }) { return bytes }
        }
    }
}

/// A span of ``OTLPTracer``. Mutations take a lock (a span is touched by one call at a time, so
/// it is never contended); `end` hands it to the exporter once.
public final class OTLPSpan: Tracing.Span, Sendable {
    public let context: InstrumentationContext
    let trace: W3CTraceContext
    let parentSpanID: [UInt8]?
    let kind: SpanKind
    let start: UInt64
    private let exporter: OTLPExporter?
    private let state: NIOLockedValueBox<State>

    struct State {
        var name: String
        var attributes = SpanAttributes()
        var status: SpanStatus?
        var events: [SpanEvent] = []
        var ended = false
    }

    init(
        name: String, kind: SpanKind, context: InstrumentationContext, trace: W3CTraceContext, parentSpanID: [UInt8]?,
        start: UInt64, exporter: OTLPExporter?
    ) {
        self.context = context
        self.trace = trace
        self.parentSpanID = parentSpanID
        self.kind = kind
        self.start = start
        self.exporter = exporter
        self.state = NIOLockedValueBox(State(name: name))
    }

    public var operationName: String {
        get { state.withLockedValue { $0.name } }
        set { state.withLockedValue { $0.name = newValue } }
    }

    public var attributes: SpanAttributes {
        get { state.withLockedValue { $0.attributes } }
        set { state.withLockedValue { $0.attributes = newValue } }
    }

    public var isRecording: Bool { exporter != nil && !state.withLockedValue { $0.ended } }

    public func setStatus(_ status: SpanStatus) { state.withLockedValue { $0.status = status } }

    public func addEvent(_ event: SpanEvent) { state.withLockedValue { $0.events.append(event) } }

    public func recordError<Instant: TracerInstant>(
        _ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant
    ) {
        var event = SpanEvent(name: "exception", at: instant(), attributes: attributes)
        event.attributes["exception.message"] = "\(error)"
        addEvent(event)
    }

    public func addLink(_ link: SpanLink) {}

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let finished: State? = state.withLockedValue { state in
            guard !state.ended else { return nil }
            state.ended = true
            return state
        }
        guard let finished, let exporter else { return }
        exporter.enqueue(FinishedSpan(span: self, state: finished, end: instant().nanosecondsSinceEpoch))
    }
}

/// What the exporter keeps of an ended span.
struct FinishedSpan: Sendable {
    let traceID: [UInt8]
    let spanID: [UInt8]
    let parentSpanID: [UInt8]?
    let name: String
    let kind: SpanKind
    let start: UInt64
    let end: UInt64
    let attributes: [(String, SpanAttribute)]
    let status: SpanStatus?
    let events: [(name: String, time: UInt64, attributes: [(String, SpanAttribute)])]

    init(span: OTLPSpan, state: OTLPSpan.State, end: UInt64) {
        traceID = span.trace.traceID
        spanID = span.trace.spanID
        parentSpanID = span.parentSpanID
        name = state.name
        kind = span.kind
        start = span.start
        self.end = end
        var attributes: [(String, SpanAttribute)] = []
        state.attributes.forEach { attributes.append(($0, $1)) }
        self.attributes = attributes.sorted { $0.0 < $1.0 }
        status = state.status
        events = state.events.map { event in
            var attributes: [(String, SpanAttribute)] = []
            event.attributes.forEach { attributes.append(($0, $1)) }
            return (event.name, event.nanosecondsSinceEpoch, attributes)
        }
    }
}

/// An instant given as nanoseconds since the Unix epoch (for spans timed from measured offsets).
public struct EpochInstant: TracerInstant {
    public var nanosecondsSinceEpoch: UInt64
    public init(nanosecondsSinceEpoch: UInt64) { self.nanosecondsSinceEpoch = nanosecondsSinceEpoch }
    public static func < (lhs: EpochInstant, rhs: EpochInstant) -> Bool {
        lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch
    }
}

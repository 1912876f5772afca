import Instrumentation
import Testing
import Tracing

@testable import TraceExporter

@Suite struct W3CTraceContextTests {
    @Test func parsesAndFormatsTheSpecExample() throws {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let context = try #require(W3CTraceContext(traceparent: header))
        #expect(context.sampled)
        #expect(context.traceID.first == 0x4b && context.spanID.last == 0xb7)
        #expect(context.traceparent == header)
        #expect(
            W3CTraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.sampled == false)
    }

    @Test func ignoresWhatTheSpecSaysToIgnore() {
        for header in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  // no flags
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero span id
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // version ff
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // 00 with trailing data
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            #expect(W3CTraceContext(traceparent: header) == nil, "\(header)")
        }
        // A later version may append fields.
        #expect(W3CTraceContext(traceparent: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra") != nil)
    }

    @Test func endpointURLs() {
        #expect(OTLPEndpoint(url: "http://collector:4318/v1/traces")?.description == "http://collector:4318/v1/traces")
        #expect(OTLPEndpoint(url: "http://127.0.0.1")?.description == "http://127.0.0.1:4318/v1/traces")
        #expect(OTLPEndpoint(url: "http://[::1]:9/x")?.port == 9)
        #expect(OTLPEndpoint(url: "https://collector") == nil)
        #expect(OTLPEndpoint(url: "http://host:notaport") == nil)
    }
}

@Suite struct OTLPTracerTests {
    struct Headers: Extractor, Injector {
        func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
    }

    /// A tracer whose collector does not exist: nothing here waits for an export.
    func tracer(ratio: Double) -> OTLPTracer {
        OTLPTracer(
            endpoint: OTLPEndpoint(url: "http://127.0.0.1:1/v1/traces")!, serviceName: "test", sampleRatio: ratio)
    }

    @Test func childSpansContinueTheCallersTraceAndFollowItsSamplingDecision() {
        let tracer = tracer(ratio: 0)
        defer { tracer.shutdown() }
        var context = InstrumentationContext.topLevel
        tracer.extract(
            ["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"], into: &context, using: Headers()
        )
        let span = tracer.startSpan("Rank", context: context, ofKind: .server)
        #expect(span.isRecording)  // the caller sampled it, whatever our ratio
        #expect(W3CTraceContext.hex(span.trace.traceID) == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(span.parentSpanID.map(W3CTraceContext.hex) == "00f067aa0ba902b7")
        var headers: [String: String] = [:]
        tracer.inject(span.context, into: &headers, using: Headers())
        #expect(headers["traceparent"]?.hasPrefix("00-4bf92f3577b34da6a3ce929d0e0e4736-") == true)
        #expect(headers["traceparent"]?.contains("00f067aa0ba902b7") == false)  // our own span id now
        span.end()

        let unsampled = tracer.startSpan("Rank", context: .topLevel, ofKind: .server)
        #expect(!unsampled.isRecording)  // no parent, ratio 0
    }

    @Test func spansEncodeAsOTLPJSON() throws {
        let tracer = tracer(ratio: 1)
        defer { tracer.shutdown() }
        let span = tracer.startSpan("ranking.v1.Ranker/Rank", context: .topLevel, ofKind: .server)
        span.attributes["rpc.method"] = "Rank"
        span.attributes["rankd.items"] = Int64(5)
        span.setStatus(SpanStatus(code: .error, message: "bad \"k\""))
        let finished = FinishedSpan(
            span: span,
            state: OTLPSpan.State(
                name: "ranking.v1.Ranker/Rank", attributes: span.attributes,
                status: SpanStatus(code: .error, message: "bad \"k\"")), end: span.start + 1000)
        let json = String(decoding: OTLPJSON.request([finished], serviceName: "rankd"), as: UTF8.self)
        #expect(json.contains(#""kind":2"#))
        #expect(json.contains(#""endTimeUnixNano":"\#(span.start + 1000)""#))
        #expect(json.contains(#"{"key":"rankd.items","value":{"intValue":"5"}}"#))
        #expect(json.contains(#""status":{"code":2,"message":"bad \"k\""}"#))
        #expect(json.contains(#""traceId":""# + W3CTraceContext.hex(span.trace.traceID)))
        #expect(!json.contains("parentSpanId"))
    }
}

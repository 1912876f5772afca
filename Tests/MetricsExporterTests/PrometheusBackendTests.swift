import CoreMetrics
import NIOCore
import NIOPosix
import Testing

@testable import MetricsExporter

@Suite struct LockFreeHistogramTests {
    @Test func samplesLandInTheFirstBucketWhoseBoundHoldsThem() {
        let histogram = LockFreeHistogram(upperBoundsNanoseconds: [50_000, 100_000])
        histogram.recordNanoseconds(50_000)  // on the bound: le is inclusive
        histogram.recordNanoseconds(50_001)
        histogram.recordNanoseconds(2_000_000_000)
        histogram.recordNanoseconds(-5)  // a clock that stepped back counts as zero
        let (counts, sum) = histogram.read()
        #expect(counts == [2, 1, 1])
        #expect(sum == 50_000 + 50_001 + 2_000_000_000)
    }

    @Test func rendersCumulativeBucketsInSecondsWithMatchingCount() {
        let histogram = LockFreeHistogram(upperBoundsNanoseconds: [50_000, 1_500_000_000])
        histogram.recordNanoseconds(10_000)
        histogram.recordNanoseconds(2_000_000_000)
        var buffer: [UInt8] = []
        histogram.render(name: "t_seconds", labels: #"a="b""#, into: &buffer)
        #expect(
            String(decoding: buffer, as: UTF8.self) == """
                t_seconds_bucket{a="b",le="0.00005"} 1
                t_seconds_bucket{a="b",le="1.5"} 1
                t_seconds_bucket{a="b",le="+Inf"} 2
                t_seconds_sum{a="b"} 2.00001
                t_seconds_count{a="b"} 2

                """)
    }

    @Test func concurrentSamplesAreAllCounted() async {
        let histogram = LockFreeHistogram(upperBoundsNanoseconds: LockFreeHistogram.defaultUpperBoundsNanoseconds)
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<4 {
                group.addTask {
                    for i in 0..<10_000 { histogram.recordNanoseconds(Int64((i * 7919 + task) % 200_000_000)) }
                }
            }
        }
        #expect(histogram.read().counts.reduce(0, +) == 40_000)
    }

    @Test func defaultBucketsResolveFiftyMicrosecondsToOneHundredMilliseconds() {
        let bounds = LockFreeHistogram.defaultUpperBoundsNanoseconds
        #expect(bounds.contains(50_000) && bounds.contains(100_000_000))
        // No gap wider than 2x between 50 µs and 100 ms.
        let inRange = bounds.filter { $0 >= 50_000 && $0 <= 100_000_000 }
        #expect(zip(inRange, inRange.dropFirst()).allSatisfy { Double($1) / Double($0) <= 2.0 })
    }

    @Test func labelValuesAreEscaped() {
        #expect(PrometheusText.labels([("v", "a\"b\\c\nd")]) == #"v="a\"b\\c\nd""#)
        #expect(PrometheusText.seconds(0) == "0")
        #expect(PrometheusText.seconds(1_000_000_000) == "1")
        #expect(PrometheusText.seconds(75_000) == "0.000075")
    }
}

@Suite struct PrometheusBackendTests {
    @Test func rendersCountersGaugesAndTimersOnceEachFamily() {
        let backend = PrometheusBackend()
        let counter = backend.makeCounter(label: "calls_total", dimensions: [("code", "OK")])
        counter.increment(by: 3)
        backend.makeRecorder(label: "open", dimensions: [], aggregate: false).record(Int64(2))
        let timer = backend.makeTimer(label: "call_seconds", dimensions: [("m", "Rank")])
        #expect(backend.makeTimer(label: "call_seconds", dimensions: [("m", "Rank")]) === timer as AnyObject)
        timer.recordNanoseconds(300_000)
        backend.makeTimer(label: "call_seconds", dimensions: [("m", "Echo")]).recordNanoseconds(1)
        let text = String(decoding: backend.render(), as: UTF8.self)
        #expect(text.contains(#"calls_total{code="OK"} 3"#))
        #expect(text.contains("open 2"))
        #expect(text.split(separator: "\n").filter { $0 == "# TYPE call_seconds histogram" }.count == 1)
        #expect(text.contains(#"call_seconds_bucket{m="Rank",le="0.0003"} 1"#))
        #expect(text.contains(#"call_seconds_count{m="Echo"} 1"#))
        backend.destroyTimer(timer)
        #expect(!String(decoding: backend.render(), as: UTF8.self).contains(#"m="Rank""#))
    }

    @Test func collectorsRunBeforeEachRender() {
        let backend = PrometheusBackend()
        let gauge = backend.makeRecorder(label: "age", dimensions: [], aggregate: false)
        backend.addCollector { gauge.record(Int64(42)) }
        #expect(String(decoding: backend.render(), as: UTF8.self).contains("age 42"))
    }

    @Test func httpEndpointServesMetricsAndNothingElse() async throws {
        let server = try await MetricsHTTPServer.start(host: "127.0.0.1", port: 0) { Array("up 1\n".utf8) }
        let port = try #require(server.localAddress?.port)
        #expect(try await HTTPGet.fetch(port: port, path: "/metrics").hasSuffix("\r\n\r\nup 1\n"))
        #expect(try await HTTPGet.fetch(port: port, path: "/metrics?x=1").hasPrefix("HTTP/1.1 200"))
        #expect(try await HTTPGet.fetch(port: port, path: "/other").hasPrefix("HTTP/1.1 404"))
        await server.close()
    }
}

/// A one-shot HTTP/1.0-style GET over a plain socket (the reply is read to EOF).
enum HTTPGet {
    static func fetch(port: Int, path: String) async throws -> String {
        let group = MultiThreadedEventLoopGroup.singleton
        let collected = Collected()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(collected.handler)
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        var request = channel.allocator.buffer(capacity: 64)
        request.writeString("GET \(path) HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        try await channel.writeAndFlush(request)
        try await channel.closeFuture.get()
        return collected.text
    }

    final class Collected: @unchecked Sendable {
        var text = ""
        var handler: Handler { Handler(owner: self) }

        final class Handler: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = ByteBuffer
            let owner: Collected
            init(owner: Collected) { self.owner = owner }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                owner.text += String(buffer: unwrapInboundIn(data))
            }
        }
    }
}

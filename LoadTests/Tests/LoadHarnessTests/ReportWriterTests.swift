import Foundation
import LoadHarness
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

@Suite struct ReportWriterTests {
    private func sampleReport(reloadStatus: String = "OK") -> RunReport {
        let ms: UInt64 = 1_000_000
        let recorder = LatencyRecorder(warmupNanos: 0)
        for second in 0..<5 {
            for index in 0..<50 {
                let intended = UInt64(second) * 1000 * ms + UInt64(index) * 20 * ms
                recorder.record(
                    intendedNanos: intended,
                    completedNanos: intended + UInt64(index + 1) * 100_000 * UInt64(second + 1),
                    outcome: index == 7 && second == 2 ? .status(.deadlineExceeded) : .status(.ok))
            }
        }
        return RunReport(
            startedAt: Date(timeIntervalSince1970: 1_700_000_000), target: "127.0.0.1:50051",
            configuration: LoadConfiguration(mode: .open(rate: 50, arrivals: .poisson), durationNanos: 5000 * ms),
            connections: 2, scenario: "a <b> & \"c\"", recorder: recorder,
            generator: GeneratorStats(sent: 250, elapsedSeconds: 5),
            reloads: [
                ReloadEvent(atNanos: 2500 * ms, version: "B&A", status: reloadStatus, message: "m", durationNanos: ms)
            ])
    }

    @Test func jsonReportRoundTripsAndHasTheDocumentedKeys() throws {
        let report = sampleReport()
        let data = try report.json()
        let decoded = try JSONDecoder().decode(RunReport.self, from: data)
        #expect(decoded == report)
        let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        #expect(object["schema"] as? String == "rankd.loadtest.v1")
        #expect(object["mode"] as? String == "open")
        let latency = object["latency"] as! [String: Any]
        for key in ["p50", "p90", "p99", "p999", "max", "mean", "count", "errors"] {
            #expect(latency[key] != nil, "latency.\(key)")
        }
        #expect((object["windows"] as! [Any]).count == 5)
        #expect((latency["errors"] as! [String: Int]) == ["DEADLINE_EXCEEDED": 1])
    }

    @Test func svgIsWellFormedAndDrawsEverySeriesAndReload() throws {
        for status in ["OK", "UNIMPLEMENTED"] {
            let svg = SVGChart.render(sampleReport(reloadStatus: status))
            let delegate = ElementCounter()
            let parser = XMLParser(data: Data(svg.utf8))
            parser.delegate = delegate
            #expect(parser.parse(), "SVG does not parse: \(String(describing: parser.parserError))")
            #expect(delegate.root == "svg")
            #expect(delegate.counts["polyline"] == 5)  // p50, p90, p99, p99.9, max
            #expect(delegate.dashedLines == 1)  // the reload marker
            #expect(delegate.texts.contains { $0.contains("B&A") })
            #expect(delegate.texts.contains { $0.contains("a <b> & \"c\"") })
            #expect(delegate.texts.contains("1ms") || delegate.texts.contains("100µs"))
        }
    }

    @Test func summaryTableShowsRatesPercentilesAndErrors() {
        let table = SummaryTable.render(sampleReport())
        #expect(table.contains("target 50.0 req/s (poisson), achieved 50.0 req/s"))
        #expect(table.contains("p99.9"))
        #expect(table.contains("errors: DEADLINE_EXCEEDED=1"))
        #expect(table.contains("reload at 2.5 s → B&A: OK"))
        #expect(table.contains("steady"))
    }

    @Test func capacityTableKeepsSubMillisecondPrecisionOfP99() {
        var report = sampleReport()
        report.capacitySteps = [
            CapacityStep(targetRate: 100, achievedRate: 100.2, p99Micros: 1_948, errors: 0, passed: false),
            CapacityStep(targetRate: 50, achievedRate: 50, p99Micros: 912, errors: 0, passed: true),
        ]
        let table = SummaryTable.render(report)
        // A 1 ms target must be judged from the printed table: 1.948 ms may not print as "1ms".
        #expect(table.contains("1.948ms"))
        #expect(table.contains("0.912ms"))
    }
}

private final class ElementCounter: NSObject, XMLParserDelegate {
    var root: String?
    var counts: [String: Int] = [:]
    var dashedLines = 0
    var texts: [String] = []
    private var text = ""

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        if root == nil { root = name }
        counts[name, default: 0] += 1
        if name == "line", attributes["stroke-dasharray"] != nil { dashedLines += 1 }
        text = ""
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "text" { texts.append(text) }
    }
}

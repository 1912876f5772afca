import Foundation

/// The terminal summary of a run: target vs achieved rate, percentiles, errors by status, and
/// the reload table when there were reloads.
public enum SummaryTable {
    public static func render(_ report: RunReport) -> String {
        var lines: [String] = []
        let load: String
        if let rate = report.targetRate {
            load =
                "open loop, target \(rate1(rate)) req/s (\(report.arrivals ?? "")), achieved \(rate1(report.achievedRate)) req/s"
        } else {
            load = "closed loop, concurrency \(report.concurrency ?? 0), achieved \(rate1(report.achievedRate)) req/s"
        }
        lines.append("target \(report.target)  scenario \(report.scenario)  connections \(report.connections)")
        lines.append(load)
        lines.append(
            "measured \(rate1(report.durationSeconds)) s after \(rate1(report.warmupSeconds)) s warm-up; "
                + "\(report.latency.count) calls recorded, \(report.generator.sent) sent in total")
        lines.append("")
        lines.append(row(["", "p50", "p90", "p99", "p99.9", "max", "mean", "errors"]))
        lines.append(latencyRow("latency", report.latency))
        if let steady = report.steadyState { lines.append(latencyRow("steady", steady)) }
        for reload in report.reloads {
            let name = "reload@\(rate1(reload.atSeconds))s"
            if let around = reload.around { lines.append(latencyRow(name, around)) }
        }
        lines.append("")
        if report.latency.errors.isEmpty {
            lines.append("errors: none")
        } else {
            lines.append("errors: " + errorList(report.latency.errors))
        }
        if report.generator.dropped > 0 || report.generator.unfinished > 0 {
            lines.append(
                "generator: \(report.generator.dropped) dropped at the in-flight cap, "
                    + "\(report.generator.unfinished) unfinished at the end")
        }
        if report.targetRate != nil {
            lines.append(
                "generator: worst send lag \(SVGChart.durationLabel(report.generator.maxSendLagMicros))"
                    + " behind schedule (charged to latency)")
        }
        for reload in report.reloads {
            let outcome = reload.status == "OK" ? "OK" : "\(reload.status): \(reload.message)"
            lines.append(
                "reload at \(rate1(reload.atSeconds)) s → \(reload.version): \(outcome) in \(rate1(reload.durationMillis)) ms"
                    + ((reload.around?.errorCount ?? 0) > 0
                        ? "; errors around it: " + errorList(reload.around!.errors) : ""))
        }
        if let steps = report.capacitySteps {
            lines.append("")
            lines.append(row(["target/s", "achieved/s", "p99", "errors", "verdict"]))
            for step in steps {
                lines.append(
                    row([
                        rate1(step.targetRate), rate1(step.achievedRate), micros(step.p99Micros),
                        "\(step.errors)", step.passed ? "ok" : "over",
                    ]))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func latencyRow(_ name: String, _ latency: LatencySummary) -> String {
        row([
            name, micros(latency.p50), micros(latency.p90), micros(latency.p99), micros(latency.p999),
            micros(latency.max), micros(UInt64(latency.mean.rounded())), "\(latency.errorCount)",
        ])
    }

    static func errorList(_ errors: [String: Int]) -> String {
        errors.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }

    static func row(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == 0
                ? cell.padding(toLength: 16, withPad: " ", startingAt: 0)
                : String(repeating: " ", count: Swift.max(0, 11 - cell.count)) + cell
        }.joined()
    }

    /// `0.412ms`, `12.3ms`, `1.20s`: three significant figures.
    public static func micros(_ value: UInt64) -> String {
        let v = Double(value)
        if v >= 1_000_000 { return String(format: "%.2fs", v / 1e6) }
        if v >= 10_000 { return String(format: "%.1fms", v / 1e3) }
        return String(format: "%.3fms", v / 1e3)
    }

    static func rate1(_ value: Double) -> String { String(format: "%.1f", value) }
}

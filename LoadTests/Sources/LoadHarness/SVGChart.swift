import Foundation

/// Draws a run's per-window percentiles as a standalone SVG: time on x (seconds after the
/// warm-up), latency on a log10 y axis, one line per percentile, a dashed vertical marker per
/// reload, red ticks under windows that had errors. Hand-written SVG 1.1, no scripts or
/// external resources, so it renders in a browser and embeds in Markdown.
public enum SVGChart {
    static let width = 960.0
    static let height = 440.0
    static let left = 80.0
    static let right = 130.0
    static let top = 40.0
    static let bottom = 50.0

    /// The series drawn, with their colours.
    static let series: [(name: String, color: String, value: @Sendable (LatencySummary) -> UInt64)] = [
        ("p50", "#1b9e77", { $0.p50 }),
        ("p90", "#7570b3", { $0.p90 }),
        ("p99", "#d95f02", { $0.p99 }),
        ("p99.9", "#e7298a", { $0.p999 }),
        ("max", "#666666", { $0.max }),
    ]

    /// The SVG document for `report`.
    public static func render(_ report: RunReport, title: String? = nil) -> String {
        let windows = report.windows.filter { $0.latency.count > 0 && $0.latency.max > 0 }
        let values = windows.flatMap { window in series.map { $0.value(window.latency) } }.filter { $0 > 0 }
        let lowDecade = floor(log10(Double(values.min() ?? 100)))
        let highDecade = Swift.max(ceil(log10(Double(values.max() ?? 1000))), lowDecade + 1)
        let seconds = Swift.max(Double(report.windows.count), report.durationSeconds, 1)
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        func x(_ second: Double) -> Double { left + plotWidth * second / seconds }
        func y(_ micros: UInt64) -> Double {
            let fraction = (log10(Double(Swift.max(micros, 1))) - lowDecade) / (highDecade - lowDecade)
            return top + plotHeight * (1 - Swift.min(Swift.max(fraction, 0), 1))
        }

        var svg = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="12">
            <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="white"/>
            <text x="\(left)" y="22" font-size="14" font-weight="bold">\(escape(title ?? defaultTitle(report)))</text>

            """
        // Horizontal grid and labels at each decade (log scale).
        for decade in stride(from: lowDecade, through: highDecade, by: 1) {
            let micros = UInt64(pow(10, decade))
            let lineY = format(y(micros))
            svg += """
                <line x1="\(format(left))" y1="\(lineY)" x2="\(format(width - right))" y2="\(lineY)" \
                stroke="#dddddd"/>
                <text x="\(format(left - 8))" y="\(lineY)" text-anchor="end" dominant-baseline="middle">\
                \(escape(durationLabel(micros)))</text>

                """
        }
        // Vertical grid every few seconds.
        let step = Swift.max(1, Int((seconds / 10).rounded(.up)))
        for second in stride(from: 0, through: Int(seconds), by: step) {
            let lineX = format(x(Double(second)))
            svg += """
                <line x1="\(lineX)" y1="\(format(top))" x2="\(lineX)" y2="\(format(height - bottom))" stroke="#eeeeee"/>
                <text x="\(lineX)" y="\(format(height - bottom + 18))" text-anchor="middle">\(second)s</text>

                """
        }
        svg += """
            <rect x="\(format(left))" y="\(format(top))" width="\(format(plotWidth))" height="\(format(plotHeight))" \
            fill="none" stroke="#333333"/>
            <text x="\(format(left + plotWidth / 2))" y="\(format(height - 10))" text-anchor="middle">\
            seconds after warm-up (by intended send time)</text>
            <text x="16" y="\(format(top + plotHeight / 2))" text-anchor="middle" \
            transform="rotate(-90 16 \(format(top + plotHeight / 2)))">latency (log scale)</text>

            """
        for (index, line) in series.enumerated() {
            let points = windows.map { "\(format(x(Double($0.second) + 0.5))),\(format(y(line.value($0.latency))))" }
            if !points.isEmpty {
                svg += """
                    <polyline fill="none" stroke="\(line.color)" stroke-width="1.6" points="\(points.joined(separator: " "))"/>

                    """
            }
            let legendY = format(top + 10 + Double(index) * 18)
            svg += """
                <line x1="\(format(width - right + 12))" y1="\(legendY)" x2="\(format(width - right + 36))" y2="\(legendY)" \
                stroke="\(line.color)" stroke-width="2"/>
                <text x="\(format(width - right + 42))" y="\(legendY)" dominant-baseline="middle">\(line.name)</text>

                """
        }
        for window in report.windows where window.latency.errorCount > 0 {
            svg += """
                <rect x="\(format(x(Double(window.second)) + 1))" y="\(format(height - bottom - 6))" \
                width="\(format(Swift.max(plotWidth / seconds - 2, 1)))" height="6" fill="#cc0000">\
                <title>\(window.latency.errorCount) errors</title></rect>

                """
        }
        for reload in report.reloads {
            let markerX = format(x(Swift.max(reload.atSeconds, 0)))
            let color = reload.status == "OK" ? "#cc0000" : "#999999"
            svg += """
                <line x1="\(markerX)" y1="\(format(top))" x2="\(markerX)" y2="\(format(height - bottom))" \
                stroke="\(color)" stroke-dasharray="4 3"/>
                <text x="\(markerX)" y="\(format(top - 4))" text-anchor="middle" fill="\(color)">\
                \(escape(reload.status == "OK" ? reload.version : "\(reload.version) \(reload.status)"))</text>

                """
        }
        svg += "</svg>\n"
        return svg
    }

    static func defaultTitle(_ report: RunReport) -> String {
        let load: String
        if let rate = report.targetRate {
            load = "open loop \(Int(rate)) req/s (\(report.arrivals ?? ""))"
        } else {
            load = "closed loop, concurrency \(report.concurrency ?? 0)"
        }
        return "rankd loadtest — \(report.scenario), \(load), \(report.target)"
    }

    /// `250µs`, `10ms`, `1s`.
    public static func durationLabel(_ micros: UInt64) -> String {
        if micros >= 1_000_000 { return "\(micros / 1_000_000)s" }
        if micros >= 1000 { return "\(micros / 1000)ms" }
        return "\(micros)µs"
    }

    static func format(_ value: Double) -> String { String(format: "%.1f", value) }

    /// Escapes text for SVG content and attribute values.
    public static func escape(_ text: String) -> String {
        var result = ""
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&apos;"
            default: result.append(character)
            }
        }
        return result
    }
}

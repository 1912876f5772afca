import Foundation
import LoadHarness

#if canImport(Glibc)
    import Glibc
#endif

/// The progress line on stderr: rewritten in place on a terminal, a plain line every five
/// seconds otherwise (CI logs stay readable).
enum Progress {
    static let isTerminal = isatty(STDERR_FILENO) == 1

    static func printer() -> @Sendable (ProgressSample) -> Void {
        { sample in
            let second = Int(sample.elapsedSeconds.rounded(.down))
            guard isTerminal || second % 5 == 0 else { return }
            var line = String(format: "%5.0fs  ", sample.elapsedSeconds)
            line += sample.inWarmup ? "warm-up  " : "recorded \(sample.recorded)  "
            line += "in flight \(sample.inFlight)"
            if let window = sample.lastWindow {
                line +=
                    "  last second: \(window.count) calls, p99 \(SummaryTable.micros(window.p99)), "
                    + "max \(SummaryTable.micros(window.max)), errors \(window.errorCount)"
            }
            FileHandle.standardError.write(Data((isTerminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
        }
    }

    /// Ends the in-place line before the summary is printed.
    static func finish(quiet: Bool) {
        if isTerminal && !quiet { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

import Foundation

/// How much slower than a plain debug build this test process runs: `RANKD_TEST_TIMING_SCALE`
/// (default 1). `make test-tsan` and `make test-asan` set it, since ThreadSanitizer slows code
/// 5–15× and AddressSanitizer about 2×. Only latency bounds that compare against the wall clock
/// are multiplied by it; every functional assertion stays exactly as strict.
public enum TimingScale {
    public static let factor: Int = {
        guard let text = ProcessInfo.processInfo.environment["RANKD_TEST_TIMING_SCALE"], let value = Int(text),
            value >= 1
        else { return 1 }
        return value
    }()

    /// `duration` stretched by ``factor``.
    public static func scaled(_ duration: Duration) -> Duration { duration * factor }
}

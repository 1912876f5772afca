import Atomics
public import CoreMetrics

/// A Prometheus histogram of durations that records without a lock or an allocation: one relaxed
/// atomic add on the sample's bucket and one on the sum. swift-prometheus's histogram takes a lock
/// per sample, which the Rank hot path must not (several samples per call, on every event loop).
///
/// Buckets are stored per bucket (not cumulative) and summed when rendered. A scrape that races a
/// sample may see it in the bucket but not yet in the sum: Prometheus tolerates that, and `_count`
/// is the sum of the buckets it rendered, so `+Inf` and `_count` always agree.
///
/// Thread-safe. Memory: one heap word per bucket, allocated once.
public final class LockFreeHistogram: TimerHandler, @unchecked Sendable {
    /// Upper bounds in nanoseconds, ascending (a final `+Inf` bucket is implied).
    public let upperBoundsNanoseconds: [Int64]
    // `UnsafeAtomic` is a pointer to its own storage: reading it from the array retains nothing.
    // Immutable after init (the pointees are atomics), which is why the class is Sendable.
    private let buckets: [UnsafeAtomic<Int>]
    private let sumNanoseconds = UnsafeAtomic<Int64>.create(0)

    /// - Parameter upperBoundsNanoseconds: ascending bucket bounds; must not be empty.
    public init(upperBoundsNanoseconds: [Int64]) {
        precondition(!upperBoundsNanoseconds.isEmpty, "a histogram needs at least one bucket")
        precondition(zip(upperBoundsNanoseconds, upperBoundsNanoseconds.dropFirst()).allSatisfy { $0 < $1 })
        self.upperBoundsNanoseconds = upperBoundsNanoseconds
        self.buckets = (0...upperBoundsNanoseconds.count).map { _ in UnsafeAtomic<Int>.create(0) }
    }

    deinit {
        for bucket in buckets { bucket.destroy() }
        sumNanoseconds.destroy()
    }

    /// Adds one sample (negative durations count as zero). O(buckets) compares, no lock.
    public func recordNanoseconds(_ duration: Int64) {
        let value = max(duration, 0)
        var index = 0
        let bounds = upperBoundsNanoseconds
        while index < bounds.count, value > bounds[index] { index += 1 }
        buckets[index].wrappingIncrement(ordering: .relaxed)
        sumNanoseconds.wrappingIncrement(by: value, ordering: .relaxed)
    }

    /// A consistent-enough reading: per-bucket counts (the last is `+Inf`) and the sum.
    public func read() -> (counts: [Int], sumNanoseconds: Int64) {
        (buckets.map { $0.load(ordering: .relaxed) }, sumNanoseconds.load(ordering: .relaxed))
    }

    /// Appends the `_bucket`, `_sum` and `_count` lines of one series in the Prometheus text
    /// format (seconds). `labels` is the rendered label list without braces (may be empty).
    func render(name: String, labels: String, into buffer: inout [UInt8]) {
        let (counts, sum) = read()
        let separator = labels.isEmpty ? "" : ","
        var cumulative = 0
        for (index, count) in counts.enumerated() {
            cumulative += count
            let bound =
                index < upperBoundsNanoseconds.count
                ? PrometheusText.seconds(upperBoundsNanoseconds[index]) : "+Inf"
            buffer.append(contentsOf: "\(name)_bucket{\(labels)\(separator)le=\"\(bound)\"} \(cumulative)\n".utf8)
        }
        let braced = labels.isEmpty ? "" : "{\(labels)}"
        buffer.append(contentsOf: "\(name)_sum\(braced) \(PrometheusText.seconds(sum))\n".utf8)
        buffer.append(contentsOf: "\(name)_count\(braced) \(cumulative)\n".utf8)
    }
}

extension LockFreeHistogram {
    /// Latency buckets that resolve 50 µs to 100 ms (about 1.5× apart there), with a coarse tail to
    /// 10 s for publishes and activations.
    public static let defaultUpperBoundsNanoseconds: [Int64] = [
        25_000, 50_000, 75_000, 100_000, 150_000, 200_000, 300_000, 500_000, 750_000,
        1_000_000, 1_500_000, 2_000_000, 3_000_000, 5_000_000, 7_500_000,
        10_000_000, 15_000_000, 25_000_000, 50_000_000, 100_000_000,
        250_000_000, 500_000_000, 1_000_000_000, 2_500_000_000, 10_000_000_000,
    ]
}

/// Formatting shared by the renderers.
enum PrometheusText {
    /// Nanoseconds as decimal seconds, exactly (`0.00005`, `1.5`, `10`): no floating point, so
    /// bucket bounds are stable strings across scrapes.
    static func seconds(_ nanoseconds: Int64) -> String {
        let negative = nanoseconds < 0
        let magnitude = nanoseconds.magnitude
        let whole = magnitude / 1_000_000_000
        var fraction = String(magnitude % 1_000_000_000)
        var text = "\(negative ? "-" : "")\(whole)"
        if fraction != "0" {
            fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += ".\(fraction)"
        }
        return text
    }

    /// A label value escaped as the text format requires (backslash, quote, newline).
    static func escape(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// `a="x",b="y"` for the dimensions, in the order given.
    static func labels(_ dimensions: [(String, String)]) -> String {
        dimensions.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",")
    }
}

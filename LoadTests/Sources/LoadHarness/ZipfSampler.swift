public import SeededRandom

/// Samples ranks `0..<count` with probability proportional to `1 / (rank + 1)^exponent`:
/// a few popular users send most requests, as in production traffic. Exponent 0 is uniform.
///
/// Builds the cumulative distribution once (O(count) memory, 8 bytes per rank) and samples by
/// binary search (O(log count)). Immutable after init; thread-safe.
public struct ZipfSampler: Sendable {
    /// Number of ranks.
    public let count: Int
    /// The Zipf exponent `s`.
    public let exponent: Double
    private let cumulative: [Double]

    /// - Parameters:
    ///   - count: number of ranks, > 0.
    ///   - exponent: `s` ≥ 0 (1.0 is classic Zipf, 0 is uniform).
    public init(count: Int, exponent: Double) {
        precondition(count > 0, "Zipf sampler needs at least one rank")
        precondition(exponent >= 0 && exponent.isFinite, "Zipf exponent must be >= 0")
        self.count = count
        self.exponent = exponent
        var cumulative = [Double](repeating: 0, count: count)
        var total = 0.0
        for rank in 0..<count {
            total += 1 / pow(Double(rank + 1), exponent)
            cumulative[rank] = total
        }
        for rank in 0..<count { cumulative[rank] /= total }
        cumulative[count - 1] = 1
        self.cumulative = cumulative
    }

    /// The probability of `rank` (for tests and reports).
    public func probability(ofRank rank: Int) -> Double {
        rank == 0 ? cumulative[0] : cumulative[rank] - cumulative[rank - 1]
    }

    /// Draws one rank.
    public func sample(using random: inout SplitMix64) -> Int {
        let u = random.nextUnitInterval()
        var low = 0
        var high = count - 1
        while low < high {
            let mid = (low + high) / 2
            if cumulative[mid] < u { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

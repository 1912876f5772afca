/// SplitMix64 (Steele, Lea and Flood, 2014): the one seedable generator of the project — HNSW
/// levels, synthetic data and test fixtures all draw from it, so every build and every test
/// reproduces bit for bit. Fast, statistically sound for these uses, not cryptographic.
///
/// The algorithm is fixed: changing it changes every graph built and every demo snapshot.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    @usableFromInline var state: UInt64

    /// A generator whose sequence is fully determined by `seed`.
    public init(seed: UInt64) { state = seed }

    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = (state ^ (state >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
}

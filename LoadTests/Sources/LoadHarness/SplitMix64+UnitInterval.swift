public import SeededRandom

extension SplitMix64 {
    /// A uniform double in the open interval (0, 1): never 0, so `log` of it is finite.
    public mutating func nextUnitInterval() -> Double {
        (Double(next() >> 11) + 0.5) * 0x1p-53
    }
}

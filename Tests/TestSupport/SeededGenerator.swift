import Foundation
public import SeededRandom

/// The tests' seeded generator: the project's one SplitMix64, so every test and fixture reproduces
/// bit for bit.
public typealias SeededGenerator = SplitMix64

extension SplitMix64 {
    /// A standard-normal sample (Box–Muller).
    public mutating func nextGaussian() -> Float {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let u2 = Double.random(in: 0..<1, using: &self)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}

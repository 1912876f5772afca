import LoadHarness
import SeededRandom
import Testing

@Suite struct ZipfSamplerTests {
    @Test func sampleFrequenciesMatchZipfProbabilities() {
        let sampler = ZipfSampler(count: 1000, exponent: 1.0)
        let harmonic = (1...1000).reduce(0.0) { $0 + 1 / Double($1) }
        #expect(abs(sampler.probability(ofRank: 0) - 1 / harmonic) < 1e-12)
        #expect(abs(sampler.probability(ofRank: 9) - 1 / (10 * harmonic)) < 1e-12)

        var random = SplitMix64(seed: 3)
        var counts = [Int](repeating: 0, count: 1000)
        let draws = 200_000
        for _ in 0..<draws { counts[sampler.sample(using: &random)] += 1 }
        for rank in [0, 1, 4, 99] {
            let expected = sampler.probability(ofRank: rank) * Double(draws)
            // Within 4 standard deviations of the binomial count.
            #expect(abs(Double(counts[rank]) - expected) < 4 * expected.squareRoot(), "rank \(rank)")
        }
        #expect(counts[0] > counts[1] && counts[1] > counts[9] && counts[9] > counts[999])
    }

    @Test func exponentZeroIsUniform() {
        let sampler = ZipfSampler(count: 10, exponent: 0)
        var random = SplitMix64(seed: 5)
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<100_000 { counts[sampler.sample(using: &random)] += 1 }
        #expect(counts.allSatisfy { abs($0 - 10_000) < 400 }, "\(counts)")
    }

    @Test func singleRankAlwaysSamplesIt() {
        let sampler = ZipfSampler(count: 1, exponent: 1.2)
        var random = SplitMix64(seed: 1)
        #expect((0..<100).allSatisfy { _ in sampler.sample(using: &random) == 0 })
    }
}

import SeededRandom
import Testing

/// The generator every graph, synthetic catalogue and test fixture draws from: its sequence is part of the
/// project's reproducibility, so it is pinned to the reference algorithm.
@Suite struct SplitMix64Tests {
    @Test func matchesTheReferenceSequence() {
        // Steele, Lea and Flood's splitmix64.c from seed 0.
        var random = SplitMix64(seed: 0)
        #expect(random.next() == 0xE220_A839_7B1D_CDAF)
        #expect(random.next() == 0x6E78_9E6A_A1B9_65F4)
        #expect(random.next() == 0x06C4_5D18_8009_454F)
    }

    @Test func equalSeedsGiveEqualSequencesAndUniformStaysInTheUnitInterval() {
        var a = SplitMix64(seed: 42)
        var b = SplitMix64(seed: 42)
        for _ in 0..<1000 {
            let value = a.uniform()
            #expect(value >= 0 && value < 1)
            #expect(value == b.uniform())
        }
    }
}

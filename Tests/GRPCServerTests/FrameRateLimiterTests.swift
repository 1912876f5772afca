import NIOCore
import Testing

@testable import GRPCServer

@Suite struct FrameRateLimiterTests {
    /// `limiter.record(at:)` outside the `#expect` macro (which cannot take a mutating call).
    private func reset(_ limiter: inout FrameRateLimiter, at milliseconds: Int64) -> Bool {
        limiter.record(at: at(milliseconds))
    }

    private func at(_ milliseconds: Int64) -> NIODeadline {
        .uptimeNanoseconds(UInt64(1_000_000_000 + milliseconds * 1_000_000))
    }

    @Test func aBurstWithinTheBudgetPassesAndTheNextResetTripsOnce() {
        var limiter = FrameRateLimiter(burst: 5, refillPerSecond: 10)
        for _ in 0..<5 { #expect(!reset(&limiter, at: 0)) }
        #expect(reset(&limiter, at: 0))
        // Tripped once: later resets do not report again (the connection is already closing).
        #expect(!reset(&limiter, at: 0))
        #expect(limiter.tripped)
    }

    @Test func tokensRefillOverTimeUpToTheBurst() {
        var limiter = FrameRateLimiter(burst: 5, refillPerSecond: 10)
        for _ in 0..<5 { #expect(!reset(&limiter, at: 0)) }
        // 10 resets per second: one every 100 ms forever is within budget.
        for step in 1...100 { #expect(!reset(&limiter, at: Int64(step) * 100)) }
        // A long quiet spell refills to the burst, never beyond it.
        #expect(!reset(&limiter, at: 60_000))
        #expect(limiter.tokens == 4)
        for _ in 0..<4 { #expect(!reset(&limiter, at: 60_000)) }
        #expect(reset(&limiter, at: 60_000))
    }

    @Test func aSustainedRateAboveTheRefillTripsEvenWithGaps() {
        var limiter = FrameRateLimiter(burst: 5, refillPerSecond: 10)
        var tripped: Int?
        // 20 resets per second: 4 tokens after the first, then net −0.5 per reset: the tenth trips.
        for step in 0..<100 where tripped == nil {
            if reset(&limiter, at: Int64(step) * 50) { tripped = step }
        }
        #expect(tripped == 9)
    }

    @Test func aClockThatDoesNotAdvanceOrGoesBackNeverRefills() {
        var limiter = FrameRateLimiter(burst: 2, refillPerSecond: 1000)
        #expect(!reset(&limiter, at: 500))
        #expect(!reset(&limiter, at: 400))
        #expect(reset(&limiter, at: 400))
    }
}

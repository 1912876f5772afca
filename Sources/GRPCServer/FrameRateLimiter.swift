import NIOCore

/// How fast one client may make the server do work on its behalf, frame by frame: a token bucket
/// over the RST_STREAM frames it sends (HTTP/2 "rapid reset", CVE-2023-44487), and another over
/// its PING and SETTINGS frames (each costs us an ACK). Each frame costs a token; tokens refill at
/// `refillPerSecond` up to `burst`. The first frame that finds the bucket empty trips the limiter,
/// once: the connection is then closed with ENHANCE_YOUR_CALM.
///
/// A value type with no clock of its own (the caller passes the time), so it is tested exactly.
struct FrameRateLimiter {
    let burst: Double
    let refillPerSecond: Double
    private(set) var tokens: Double
    private(set) var tripped = false
    private var updated: NIODeadline?

    init(burst: Int, refillPerSecond: Int) {
        self.burst = Double(burst)
        self.refillPerSecond = Double(refillPerSecond)
        tokens = Double(burst)
    }

    /// Charges one frame received at `now`. Returns true exactly once: for the first frame beyond
    /// the budget.
    mutating func record(at now: NIODeadline) -> Bool {
        if let updated {
            let elapsed = Double(max((now - updated).nanoseconds, 0)) / 1e9
            tokens = min(burst, tokens + elapsed * refillPerSecond)
        }
        updated = now
        tokens -= 1
        guard tokens < 0, !tripped else { return false }
        tripped = true
        return true
    }
}

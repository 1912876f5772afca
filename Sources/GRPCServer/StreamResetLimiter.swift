import NIOCore

/// How fast one client may make the server set up and tear down streams: a token bucket over the
/// RST_STREAM frames it sends (HTTP/2 "rapid reset", CVE-2023-44487). Each reset costs a token;
/// tokens refill at `refillPerSecond` up to `burst`. The first reset that finds the bucket empty
/// trips the limiter, once: the connection is then closed with ENHANCE_YOUR_CALM.
///
/// A value type with no clock of its own (the caller passes the time), so it is tested exactly.
struct StreamResetLimiter {
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

    /// Charges one reset received at `now`. Returns true exactly once: for the first reset beyond
    /// the budget.
    mutating func recordReset(at now: NIODeadline) -> Bool {
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

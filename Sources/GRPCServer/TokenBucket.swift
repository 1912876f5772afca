import NIOCore

/// A token bucket: up to `burst` events at once, `refillPerSecond` sustained. Bounds how fast one
/// connection may make us do work on its behalf (stream resets, PING and SETTINGS ACKs).
///
/// Not thread-safe: one per connection, used on its event loop.
struct TokenBucket {
    let burst: Double
    let refillPerSecond: Double
    private var tokens: Double
    private var updated: NIODeadline

    init(burst: Int, refillPerSecond: Int, now: NIODeadline = .now()) {
        self.burst = Double(burst)
        self.refillPerSecond = Double(refillPerSecond)
        self.tokens = Double(burst)
        self.updated = now
    }

    /// Takes one token; false when the bucket is empty (the event is over the limit).
    mutating func take(now: NIODeadline = .now()) -> Bool {
        // A clock that went backwards refills nothing.
        let elapsed = max(0, Double((now - updated).nanoseconds) / 1e9)
        updated = max(updated, now)
        tokens = min(burst, tokens + elapsed * refillPerSecond) - 1
        return tokens >= 0
    }
}

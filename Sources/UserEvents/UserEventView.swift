/// One user's events as a Rank call reads them: a copy of their slot taken under the shard's lock,
/// decoded after it is released. Keep one per scratch and reuse it: ``UserEventStore/read(userKey:into:)``
/// overwrites it in place and allocates nothing.
public struct UserEventView: Sendable {
    private var words: [UInt32]
    /// Whether the last read found the user.
    public private(set) var found = false

    public init() {
        words = Array(repeating: 0, count: EventSlotLayout.words)
    }

    /// Impressions held (at most 32), newest first through ``impression(_:)``.
    public var impressionCount: Int { found ? Int((words[2] >> 8) & 0xFF) : 0 }

    /// Interactions held (at most 16), newest first through ``interaction(_:)``.
    public var interactionCount: Int { found ? Int((words[2] >> 24) & 0xFF) : 0 }

    /// The `i`th newest impression (0 is the newest).
    public func impression(_ i: Int) -> (item: UInt64, time: UInt32) {
        precondition(i >= 0 && i < impressionCount)
        let head = Int(words[2] & 0xFF)
        let capacity = EventSlotLayout.impressionCapacity
        let slot = (head - 1 - i + 2 * capacity) % capacity
        let at = EventSlotLayout.impressionsAt + slot * EventSlotLayout.impressionWords
        return (UInt64(words[at]) | UInt64(words[at + 1]) << 32, words[at + 2])
    }

    /// The `i`th newest interaction (0 is the newest).
    public func interaction(_ i: Int) -> (item: UInt64, type: EventType, time: UInt32, weight: Float) {
        precondition(i >= 0 && i < interactionCount)
        let head = Int((words[2] >> 16) & 0xFF)
        let capacity = EventSlotLayout.interactionCapacity
        let slot = (head - 1 - i + 2 * capacity) % capacity
        let at = EventSlotLayout.interactionsAt + slot * EventSlotLayout.interactionWords
        let high = words[at + 1]
        let item = UInt64(words[at]) | UInt64(high & 0x0FFF_FFFF) << 32
        let type = EventType(rawValue: UInt8(high >> 28)) ?? .custom
        return (item, type, words[at + 2], Float(bitPattern: words[at + 3]))
    }

    /// Forgets the last read (the view then holds no events).
    public mutating func clear() { found = false }

    /// Copies `count` words from `source` (the store's slot) and marks the view found.
    mutating func load(from source: UnsafePointer<UInt32>) {
        words.withUnsafeMutableBufferPointer { target in
            target.baseAddress!.update(from: source, count: EventSlotLayout.words)
        }
        found = true
    }
}

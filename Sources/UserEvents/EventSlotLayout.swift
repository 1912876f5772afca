/// The fixed layout of one tracked user's state: 164 little 32-bit words (656 bytes), so the
/// budget divides into a known number of users and a read is one copy.
///
/// ```
/// word 0–1   user key (u64)
/// word 2     impression ring head (u8) | count (u8) << 8 | interaction head << 16 | count << 24
/// word 3     bit 0: referenced since the clock hand last passed (eviction)
/// word 4…    32 impressions × 3 words: item key lo, item key hi (60 bits), Unix seconds
/// word 100…  16 interactions × 4 words: item key lo, item key hi | type << 28, Unix seconds, weight (f32 bits)
/// ```
///
/// Impressions and interactions have rings of their own so that a page of impressions never pushes
/// the user's last clicks out of the session history.
enum EventSlotLayout {
    static let impressionCapacity = 32
    static let interactionCapacity = 16
    static let impressionWords = 3
    static let interactionWords = 4
    static let impressionsAt = 4
    static let interactionsAt = impressionsAt + impressionCapacity * impressionWords
    /// Words per user.
    static let words = interactionsAt + interactionCapacity * interactionWords
    /// Bytes per user in the slot array.
    static let bytes = words * 4
    /// Bytes per user in a shard's index (`[UInt64: Int32]` reserved for the shard's capacity: 12-byte
    /// entries at a load factor of at most 3/4, rounded up to a power of two, so at most 32).
    static let indexBytes = 32
}

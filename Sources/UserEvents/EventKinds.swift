import MappedStorage

/// What a recorded event says the user did with an item.
public enum EventType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// The item was shown (drives rotation and frequency caps).
    case impression = 1
    /// The item was clicked or viewed (session history).
    case click = 2
    case addToCart = 3
    /// The item was bought (session history; `exclude_purchased`).
    case purchase = 4
    /// Any other interaction the caller tracks (session history).
    case custom = 5

    public var description: String {
        switch self {
        case .impression: "impression"
        case .click: "click"
        case .addToCart: "add_to_cart"
        case .purchase: "purchase"
        case .custom: "custom"
        }
    }
}

/// The 64-bit keys the store files users and items under: xxHash64 of the id's UTF-8 bytes with a
/// fixed seed, so a key means the same item in every snapshot and every process.
///
/// Keys are not ids: two ids may share a key. With 10 million users the chance that any two collide
/// is about 3·10⁻⁶ (birthday bound over 2⁶⁴); item keys keep 60 bits (the top 4 carry the event type
/// in the store), so about 4·10⁻⁵ for a catalogue of 10 million. A collision merges two histories; it
/// never crashes or leaks memory.
public enum EventKey {
    /// Fixed forever: keys are compared across snapshots.
    static let userSeed: UInt64 = 0x7573_6572_6576_6E74  // "userevnt"
    static let itemSeed: UInt64 = 0x6974_656D_6576_6E74  // "itemevnt"
    /// Item keys keep the low 60 bits.
    public static let itemMask: UInt64 = (1 << 60) - 1

    /// The key of a user id. No allocation for native strings.
    public static func user(_ id: String) -> UInt64 {
        var id = id
        return id.withUTF8 { XXHash64.hash(UnsafeRawBufferPointer($0), seed: userSeed) }
    }

    /// The key of an item id (60 bits). No allocation for native strings.
    public static func item(_ id: String) -> UInt64 {
        var id = id
        return id.withUTF8 { item(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// The key of the item id whose UTF-8 bytes are `bytes` (60 bits).
    public static func item(utf8 bytes: UnsafeRawBufferPointer) -> UInt64 {
        XXHash64.hash(bytes, seed: itemSeed) & itemMask
    }
}

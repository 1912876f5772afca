/// What a Rank call reads of the live overlay: the item attribute columns with every live change
/// applied (the snapshot's own mapped columns where nothing changed), and bitsets of removed items and
/// deleted users. Plain pointers, no reference counting: valid only inside
/// ``OverlayBinding/read(_:)``.
public struct OverlayColumns {
    /// In-stock flag per item row (1 in stock).
    public let inStock: UnsafeBufferPointer<UInt8>
    /// Price in cents per item row (`ItemAttributes.noPrice` = none).
    public let priceCents: UnsafeBufferPointer<Int64>
    /// Tag bits per item row.
    public let tags: UnsafeBufferPointer<UInt64>
    /// Bit r set when item row r is removed; empty when no item is.
    public let removedItems: UnsafeBufferPointer<UInt64>
    /// Bit r set when user row r is deleted; empty when no user is.
    public let deletedUsers: UnsafeBufferPointer<UInt64>
    /// How many bits of `removedItems` are set.
    public let removedItemCount: Int
    /// Items in stock minus the snapshot's count (the filter estimates add it).
    public let inStockDelta: Int
    /// Per tag bit, items carrying it minus the snapshot's count.
    public let tagDeltas: UnsafeBufferPointer<Int>

    /// Whether any item is removed (a filter must then check every row).
    @inline(__always)
    public var removesItems: Bool { !removedItems.isEmpty }

    @inline(__always)
    public func isRemoved(_ row: Int) -> Bool {
        Self.contains(removedItems, row)
    }

    @inline(__always)
    public func isUserDeleted(_ row: Int) -> Bool {
        Self.contains(deletedUsers, row)
    }

    @inline(__always)
    static func contains(_ bits: UnsafeBufferPointer<UInt64>, _ row: Int) -> Bool {
        let word = row >> 6
        return word < bits.count && bits[word] & (1 << UInt64(row & 63)) != 0
    }
}

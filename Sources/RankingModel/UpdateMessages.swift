/// `ranking.v1.SnapshotAdmin` live-update messages as Swift values (see `Protos/ranking/v1/admin.proto`,
/// `UpdateItems` and `DeleteUser`). Shared by the codec (RankingAPI), the live overlay (LiveState), the
/// service and rankctl.

/// One item's change in an `UpdateItems` batch. Fields left `nil` / empty are unchanged.
public struct ItemUpdate: Sendable, Equatable {
    /// The item's id in the catalogue (the snapshot's item ids).
    public var itemID: String
    /// New stock state, or nil to leave it.
    public var inStock: Bool?
    /// New price in currency units (as in the catalogue JSON: `price` × 100 is stored, rounded), or nil to leave it.
    public var price: Double?
    /// Tag names to add; each must be a tag of the active snapshot.
    public var addTags: [String]
    /// Tag names to remove.
    public var removeTags: [String]
    /// Never serve the item again (retrieval, popularity, pins, session signals).
    public var removed: Bool

    public init(
        itemID: String, inStock: Bool? = nil, price: Double? = nil, addTags: [String] = [], removeTags: [String] = [],
        removed: Bool = false
    ) {
        self.itemID = itemID
        self.inStock = inStock
        self.price = price
        self.addTags = addTags
        self.removeTags = removeTags
        self.removed = removed
    }
}

/// An `UpdateItems` call.
public struct UpdateItemsRequest: Sendable, Equatable {
    /// When not empty, the version the caller expects to be active: any other is `INVALID_ARGUMENT`.
    public var snapshotVersion: String
    /// Applied in order; a later change of the same item wins.
    public var items: [ItemUpdate]

    /// Most items one call may carry.
    public static let maxItems = 10_000
    /// Most bytes an id or a tag name may have.
    public static let maxNameBytes = 4096

    public init(snapshotVersion: String = "", items: [ItemUpdate]) {
        self.snapshotVersion = snapshotVersion
        self.items = items
    }

    /// Checks everything that does not depend on the active snapshot: batch size, ids, prices, tags.
    /// - Throws: ``UpdateValidationError`` naming the item (index and id) and the field.
    public func validate() throws(UpdateValidationError) {
        guard !items.isEmpty else { throw UpdateValidationError("items: the batch is empty") }
        guard items.count <= Self.maxItems else {
            throw UpdateValidationError("items: \(items.count) updates, at most \(Self.maxItems) per call")
        }
        for (index, item) in items.enumerated() {
            let name = "items[\(index)] (\(item.itemID.prefix(64)))"
            guard !item.itemID.isEmpty else { throw UpdateValidationError("items[\(index)].item_id: empty") }
            guard item.itemID.utf8.count <= Self.maxNameBytes else {
                throw UpdateValidationError("items[\(index)].item_id: longer than \(Self.maxNameBytes) bytes")
            }
            if let price = item.price {
                guard price.isFinite, price >= 0, price < 9e15 else {
                    throw UpdateValidationError("\(name).price: must be a finite number in 0..<9e15, got \(price)")
                }
            }
            for (field, tags) in [("add_tags", item.addTags), ("remove_tags", item.removeTags)] {
                for tag in tags where tag.isEmpty || tag.utf8.count > Self.maxNameBytes {
                    throw UpdateValidationError("\(name).\(field): empty or over-long tag name")
                }
            }
            if let both = item.addTags.first(where: item.removeTags.contains) {
                throw UpdateValidationError("\(name): tag \"\(both)\" is both in add_tags and remove_tags")
            }
            guard
                item.inStock != nil || item.price != nil || !item.addTags.isEmpty || !item.removeTags.isEmpty
                    || item.removed
            else {
                throw UpdateValidationError(
                    "\(name): changes nothing (set in_stock, price, add_tags, remove_tags or removed)")
            }
        }
    }
}

/// The answer to `UpdateItems`: what was applied, once durable and visible to Rank.
public struct UpdateItemsResult: Sendable, Equatable {
    /// Updates applied (items the active snapshot has).
    public var applied = 0
    /// Ids the active snapshot does not have, in request order: not applied and not logged.
    public var unknownItemIDs: [String] = []
    /// The log sequence number of the batch (0 when nothing was logged).
    public var sequence: UInt64 = 0
    /// The snapshot version the batch was checked against.
    public var snapshotVersion = ""

    public init() {}
}

/// The answer to `DeleteUser`, once durable and visible to Rank.
public struct DeleteUserResult: Sendable, Equatable {
    /// Whether the active snapshot has the user (an unknown user is still recorded, so no later snapshot
    /// activation and no server-side state brings them back).
    public var knownUser = false
    public var sequence: UInt64 = 0

    public init() {}
}

/// The live overlay's size, reported by `Status`.
public struct OverlayStatus: Sendable, Equatable {
    /// Items with at least one live change.
    public var items = 0
    /// Of those, items removed.
    public var removedItems = 0
    /// Users deleted.
    public var deletedUsers = 0
    /// Bytes of the write-ahead log.
    public var logBytes = 0
    /// The last sequence number written.
    public var sequence: UInt64 = 0

    public init() {}
}

/// A bad live update; the message names the item and field.
public struct UpdateValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

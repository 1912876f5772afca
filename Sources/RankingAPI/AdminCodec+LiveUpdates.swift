import CProtobufC
public import GRPCCore
public import NIOCore
public import RankingModel
import RankingProtos

/// `UpdateItems` and `DeleteUser` (`ranking.v1.SnapshotAdmin`) ⇄ Swift values.
extension AdminCodec {
    // MARK: UpdateItems

    /// Decodes an `UpdateItemsRequest`. An unknown `stock` value is `INVALID_ARGUMENT` naming the item;
    /// the values themselves are checked by ``UpdateItemsRequest/validate()``.
    public static func decodeUpdateItemsRequest(_ buffer: ByteBuffer) throws(GRPCStatus) -> UpdateItemsRequest {
        try ProtobufCodec.decode(buffer, initializer: ranking__v1__update_items_request__init) {
            (message) throws(GRPCStatus) -> UpdateItemsRequest in
            let m = message.pointee
            var request = UpdateItemsRequest(snapshotVersion: ProtobufCodec.string(m.snapshot_version), items: [])
            guard m.n_items <= UpdateItemsRequest.maxItems else {
                throw GRPCStatus(
                    .invalidArgument, "items: \(m.n_items) updates, at most \(UpdateItemsRequest.maxItems) per call")
            }
            request.items.reserveCapacity(m.n_items)
            for index in 0..<m.n_items {
                guard let u = m.items[index]?.pointee else { continue }
                var update = ItemUpdate(itemID: ProtobufCodec.string(u.item_id))
                switch u.stock {
                case RANKING__V1__STOCK_CHANGE__STOCK_UNCHANGED: break
                case RANKING__V1__STOCK_CHANGE__STOCK_IN: update.inStock = true
                case RANKING__V1__STOCK_CHANGE__STOCK_OUT: update.inStock = false
                default:
                    throw GRPCStatus(
                        .invalidArgument,
                        "items[\(index)] (\(update.itemID.prefix(64))).stock: unknown value \(u.stock.rawValue)")
                }
                update.price = u.price?.pointee.value
                update.addTags = ProtobufCodec.strings(u.add_tags, u.n_add_tags)
                update.removeTags = ProtobufCodec.strings(u.remove_tags, u.n_remove_tags)
                update.removed = u.removed != 0
                request.items.append(update)
            }
            return request
        }
    }

    /// Encodes an `UpdateItemsRequest` (client side).
    public static func encodeUpdateItemsRequest(_ request: UpdateItemsRequest, allocator: ByteBufferAllocator = .init())
        -> ByteBuffer
    {
        let arena = CArena(blockSize: 64 * 1024)
        let m = arena.allocate(Ranking__V1__UpdateItemsRequest.self)
        ranking__v1__update_items_request__init(m)
        m.pointee.snapshot_version = arena.cString(request.snapshotVersion)
        let items = arena.allocate(UnsafeMutablePointer<Ranking__V1__ItemUpdate>?.self, count: request.items.count)
        for (index, update) in request.items.enumerated() {
            let u = arena.allocate(Ranking__V1__ItemUpdate.self)
            ranking__v1__item_update__init(u)
            u.pointee.item_id = arena.cString(update.itemID)
            u.pointee.stock =
                switch update.inStock {
                case nil: RANKING__V1__STOCK_CHANGE__STOCK_UNCHANGED
                case true?: RANKING__V1__STOCK_CHANGE__STOCK_IN
                case false?: RANKING__V1__STOCK_CHANGE__STOCK_OUT
                }
            u.pointee.price = update.price.map { RankCodec.doubleValue($0, arena) }
            (u.pointee.n_add_tags, u.pointee.add_tags) = (update.addTags.count, arena.cStrings(update.addTags))
            (u.pointee.n_remove_tags, u.pointee.remove_tags) = (
                update.removeTags.count, arena.cStrings(update.removeTags)
            )
            u.pointee.removed = update.removed ? 1 : 0
            items[index] = u
        }
        (m.pointee.n_items, m.pointee.items) = (request.items.count, request.items.isEmpty ? nil : items)
        return ProtobufCodec.encode(m, allocator: allocator)
    }

    /// Encodes an `UpdateItemsResponse` (server side).
    public static func encodeUpdateItemsResponse(_ result: UpdateItemsResult, allocator: ByteBufferAllocator = .init())
        -> ByteBuffer
    {
        let arena = CArena(blockSize: 4 * 1024)
        let m = arena.allocate(Ranking__V1__UpdateItemsResponse.self)
        ranking__v1__update_items_response__init(m)
        m.pointee.applied = UInt32(clamping: result.applied)
        (m.pointee.n_unknown_item_ids, m.pointee.unknown_item_ids) = (
            result.unknownItemIDs.count, arena.cStrings(result.unknownItemIDs)
        )
        m.pointee.sequence = result.sequence
        m.pointee.snapshot_version = arena.cString(result.snapshotVersion)
        return ProtobufCodec.encode(m, allocator: allocator)
    }

    /// Decodes an `UpdateItemsResponse` (client side).
    public static func decodeUpdateItemsResponse(_ buffer: ByteBuffer) throws(GRPCStatus) -> UpdateItemsResult {
        try ProtobufCodec.decode(buffer, initializer: ranking__v1__update_items_response__init) {
            (m) throws(GRPCStatus) -> UpdateItemsResult in
            var result = UpdateItemsResult()
            result.applied = Int(m.pointee.applied)
            result.unknownItemIDs = ProtobufCodec.strings(m.pointee.unknown_item_ids, m.pointee.n_unknown_item_ids)
            result.sequence = m.pointee.sequence
            result.snapshotVersion = ProtobufCodec.string(m.pointee.snapshot_version)
            return result
        }
    }

    // MARK: DeleteUser

    /// Decodes a `DeleteUserRequest` and returns the user id.
    public static func decodeDeleteUserRequest(_ buffer: ByteBuffer) throws(GRPCStatus) -> String {
        try ProtobufCodec.decode(buffer, initializer: ranking__v1__delete_user_request__init) {
            (m) throws(GRPCStatus) -> String in ProtobufCodec.string(m.pointee.user_id)
        }
    }

    /// Encodes a `DeleteUserRequest` (client side).
    public static func encodeDeleteUserRequest(userID: String, allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        let arena = CArena(blockSize: 1024)
        let m = arena.allocate(Ranking__V1__DeleteUserRequest.self)
        ranking__v1__delete_user_request__init(m)
        m.pointee.user_id = arena.cString(userID)
        return ProtobufCodec.encode(m, allocator: allocator)
    }

    /// Encodes a `DeleteUserResponse` (server side).
    public static func encodeDeleteUserResponse(_ result: DeleteUserResult, allocator: ByteBufferAllocator = .init())
        -> ByteBuffer
    {
        let arena = CArena(blockSize: 256)
        let m = arena.allocate(Ranking__V1__DeleteUserResponse.self)
        ranking__v1__delete_user_response__init(m)
        m.pointee.known_user = result.knownUser ? 1 : 0
        m.pointee.sequence = result.sequence
        return ProtobufCodec.encode(m, allocator: allocator)
    }

    /// Decodes a `DeleteUserResponse` (client side).
    public static func decodeDeleteUserResponse(_ buffer: ByteBuffer) throws(GRPCStatus) -> DeleteUserResult {
        try ProtobufCodec.decode(buffer, initializer: ranking__v1__delete_user_response__init) {
            (m) throws(GRPCStatus) -> DeleteUserResult in
            var result = DeleteUserResult()
            result.knownUser = m.pointee.known_user != 0
            result.sequence = m.pointee.sequence
            return result
        }
    }
}

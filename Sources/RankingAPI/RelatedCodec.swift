import CProtobufC
public import GRPCCore
public import NIOCore
public import RankingModel
import RankingProtos

/// `ranking.v1.RelatedRequest` and the `RankBatch` messages ⇄ Swift values. The embedded rules are
/// a `RankRequest` and the answers are `RankResponse`s, coded exactly as for Rank (``RankCodec``).
public enum RelatedCodec {
    /// Decodes a Related request into the Rank request the engine runs (seeds set).
    public static func decodeRelatedRequest(_ buffer: ByteBuffer) throws(GRPCStatus) -> RankRequest {
        let arena = CArena(blockSize: 16 * 1024)
        return try ProtobufCodec.decode(
            buffer, initializer: ranking__v1__related_request__init, arena: arena
        ) { (message) throws(GRPCStatus) -> RankRequest in
            var request = RankRequest()
            if let rules = message.pointee.rules?.pointee {
                request = try RankCodec.request(from: rules)
            }
            request.seedItemIDs = ProtobufCodec.strings(message.pointee.seed_item_ids, message.pointee.n_seed_item_ids)
            return request
        }
    }

    /// Encodes a Related request (client side): `request.seedItemIDs` are the seeds, the rest the rules.
    public static func encodeRelatedRequest(_ request: RankRequest, allocator: ByteBufferAllocator = .init())
        -> ByteBuffer
    {
        let arena = CArena(blockSize: 8 * 1024)
        let message = arena.allocate(Ranking__V1__RelatedRequest.self)
        ranking__v1__related_request__init(message)
        (message.pointee.n_seed_item_ids, message.pointee.seed_item_ids) =
            (request.seedItemIDs.count, arena.cStrings(request.seedItemIDs))
        let rules = arena.allocate(Ranking__V1__RankRequest.self)
        ranking__v1__rank_request__init(rules)
        RankCodec.fill(rules, from: request, arena: arena)
        message.pointee.rules = rules
        return ProtobufCodec.encode(message, allocator: allocator)
    }

    /// Decodes a RankBatch request: the users and the shared rules.
    public static func decodeBatchRequest(_ buffer: ByteBuffer) throws(GRPCStatus) -> (
        userIDs: [String], rules: RankRequest
    ) {
        let arena = CArena(blockSize: 64 * 1024)
        return try ProtobufCodec.decode(
            buffer, initializer: ranking__v1__rank_batch_request__init, arena: arena
        ) { (message) throws(GRPCStatus) -> (userIDs: [String], rules: RankRequest) in
            var rules = RankRequest()
            if let r = message.pointee.rules?.pointee { rules = try RankCodec.request(from: r) }
            return (ProtobufCodec.strings(message.pointee.user_ids, message.pointee.n_user_ids), rules)
        }
    }

    /// Encodes a RankBatch request (client side).
    public static func encodeBatchRequest(
        userIDs: [String], rules: RankRequest, allocator: ByteBufferAllocator = .init()
    ) -> ByteBuffer {
        let arena = CArena(blockSize: 64 * 1024)
        let message = arena.allocate(Ranking__V1__RankBatchRequest.self)
        ranking__v1__rank_batch_request__init(message)
        (message.pointee.n_user_ids, message.pointee.user_ids) = (userIDs.count, arena.cStrings(userIDs))
        let r = arena.allocate(Ranking__V1__RankRequest.self)
        ranking__v1__rank_request__init(r)
        RankCodec.fill(r, from: rules, arena: arena)
        message.pointee.rules = r
        return ProtobufCodec.encode(message, allocator: allocator)
    }

    /// Encodes one user's batch result: the response, or the error text.
    public static func encodeBatchResult(
        userID: String, _ result: Result<RankResponse, GRPCStatus>, allocator: ByteBufferAllocator = .init()
    ) -> ByteBuffer {
        let arena = CArena(blockSize: 16 * 1024)
        let message = arena.allocate(Ranking__V1__RankBatchResult.self)
        ranking__v1__rank_batch_result__init(message)
        message.pointee.user_id = arena.cString(userID)
        switch result {
        case .success(let response):
            let m = arena.allocate(Ranking__V1__RankResponse.self)
            ranking__v1__rank_response__init(m)
            RankCodec.fill(m, from: response, arena: arena)
            message.pointee.response = m
        case .failure(let status):
            message.pointee.error = arena.cString("\(status.code): \(status.message)")
        }
        return ProtobufCodec.encode(message, allocator: allocator)
    }

    /// Decodes one batch result (client side): the response, or the error text.
    public static func decodeBatchResult(_ buffer: ByteBuffer) throws(GRPCStatus) -> (
        userID: String, response: RankResponse?, error: String
    ) {
        let arena = CArena(blockSize: 16 * 1024)
        return try ProtobufCodec.decode(
            buffer, initializer: ranking__v1__rank_batch_result__init, arena: arena
        ) { (message) throws(GRPCStatus) -> (userID: String, response: RankResponse?, error: String) in
            let m = message.pointee
            return (
                ProtobufCodec.string(m.user_id), m.response.map { RankCodec.response(from: $0.pointee) },
                ProtobufCodec.string(m.error)
            )
        }
    }
}

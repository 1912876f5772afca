import GRPCCore
import NIOCore
import RankingModel
import Testing

@testable import RankingAPI

@Suite struct LiveUpdateCodecTests {
    static let batch = UpdateItemsRequest(
        snapshotVersion: "v7",
        items: [
            ItemUpdate(itemID: "sku-1", inStock: false, price: 0, addTags: ["sale", "new"], removeTags: ["eco"]),
            ItemUpdate(itemID: "sku-2", inStock: true),
            ItemUpdate(itemID: "sku-3", removed: true),
            ItemUpdate(itemID: "sku-4", price: 19.99),
        ])

    @Test func updateItemsRoundTripsEveryFieldAndPresence() throws {
        let decoded = try AdminCodec.decodeUpdateItemsRequest(AdminCodec.encodeUpdateItemsRequest(Self.batch))
        #expect(decoded == Self.batch, "a zero price and an unset one stay apart")
        var result = UpdateItemsResult()
        (result.applied, result.unknownItemIDs, result.sequence, result.snapshotVersion) = (3, ["x", "y"], 42, "v7")
        #expect(try AdminCodec.decodeUpdateItemsResponse(AdminCodec.encodeUpdateItemsResponse(result)) == result)
        var deleted = DeleteUserResult()
        (deleted.knownUser, deleted.sequence) = (true, 9)
        #expect(try AdminCodec.decodeDeleteUserResponse(AdminCodec.encodeDeleteUserResponse(deleted)) == deleted)
        #expect(try AdminCodec.decodeDeleteUserRequest(AdminCodec.encodeDeleteUserRequest(userID: "u_1")) == "u_1")
    }

    @Test func unknownStockValueAndOversizedBatchNameTheField() throws {
        // Field 2 of item 1 set to 7: items (field 2, length-delimited) holding item_id "a" and stock 7.
        let item: [UInt8] = [0x0A, 0x01, UInt8(ascii: "a"), 0x10, 0x07]
        let message: [UInt8] = [0x12, UInt8(item.count)] + item
        #expect(throws: GRPCStatus(.invalidArgument, "items[0] (a).stock: unknown value 7")) {
            try AdminCodec.decodeUpdateItemsRequest(ByteBuffer(bytes: message))
        }
        let big = UpdateItemsRequest(
            items: (0...UpdateItemsRequest.maxItems).map { ItemUpdate(itemID: "s\($0)", removed: true) })
        let error = #expect(throws: GRPCStatus.self) {
            try AdminCodec.decodeUpdateItemsRequest(AdminCodec.encodeUpdateItemsRequest(big))
        }
        #expect(error?.message.hasPrefix("items: 10001 updates") == true)
        #expect(throws: GRPCStatus.self) {
            try AdminCodec.decodeUpdateItemsRequest(ByteBuffer(bytes: [0x12, 0x05, 0x0A]))
        }
    }

    @Test func validationNamesItemAndField() {
        func message(_ items: [ItemUpdate]) -> String? {
            do {
                try UpdateItemsRequest(items: items).validate()
                return nil
            } catch {
                return error.message
            }
        }
        #expect(message([]) == "items: the batch is empty")
        #expect(
            message([ItemUpdate(itemID: "a", price: .nan)])?.hasPrefix("items[0] (a).price: must be a finite number")
                == true)
        #expect(
            message([ItemUpdate(itemID: "a", removed: true), ItemUpdate(itemID: "b", price: -0.01)])?.hasPrefix(
                "items[1] (b).price") == true)
        #expect(message([ItemUpdate(itemID: "a", price: .infinity)]) != nil)
        #expect(message([ItemUpdate(itemID: "")]) == "items[0].item_id: empty")
        #expect(message([ItemUpdate(itemID: "a")])?.hasPrefix("items[0] (a): changes nothing") == true)
        #expect(message([ItemUpdate(itemID: "a", addTags: ["x"], removeTags: ["x"])])?.contains("both") == true)
        #expect(message([ItemUpdate(itemID: "a", addTags: [""])])?.hasPrefix("items[0] (a).add_tags") == true)
        #expect(message([ItemUpdate(itemID: "a", inStock: false, price: 0)]) == nil)
    }
}

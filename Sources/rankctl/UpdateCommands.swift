import ArgumentParser
import Foundation
import RankingAPI

/// `rankctl update-items FILE.jsonl`: live item changes (stock, price, tags, removal) without a new snapshot.
struct UpdateItemsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update-items",
        abstract: "Send live item changes (stock, price, tags, removal) to rankd, in batches.",
        discussion: """
            FILE has one JSON object per line: {"id": "sku-1", "in_stock": false, "price": 19.99, \
            "add_tags": ["sale"], "remove_tags": ["new"], "removed": true} — only "id" is required, and at \
            least one change. Each batch is acknowledged once durable and visible to Rank. With --servers \
            every replica receives every batch; a replica that fails is named and the command exits \
            non-zero (sending the same file again is safe: a later change of a field wins).
            """)

    @Argument(help: "JSON Lines file of item changes ('-' reads standard input).")
    var file: String

    @Option(help: "Items per UpdateItems call (1...10000).")
    var batchSize = 1000

    @Option(help: "Refuse unless this snapshot version is active (rankd checks it per batch).")
    var snapshotVersion: String?

    @OptionGroup var connection: AdminConnectionOptions

    func run() async throws {
        guard (1...UpdateItemsRequest.maxItems).contains(batchSize) else {
            throw ValidationError("--batch-size must be in 1...\(UpdateItemsRequest.maxItems)")
        }
        let updates = try Self.read(file)
        guard !updates.isEmpty else { throw ValidationError("\(file): no item changes") }
        let batches = stride(from: 0, to: updates.count, by: batchSize).map {
            UpdateItemsRequest(
                snapshotVersion: snapshotVersion ?? "", items: Array(updates[$0..<min($0 + batchSize, updates.count)]))
        }
        let fleet = try connection.fleet() ?? [connection.endpoint()]
        let results = await Fleet.onEach(fleet) { _, endpoint -> (applied: Int, unknown: [String]) in
            var applied = 0
            var unknown: [String] = []
            for (index, batch) in batches.enumerated() {
                do {
                    let result = try await endpoint.updateItems(batch)
                    applied += result.applied
                    unknown += result.unknownItemIDs
                } catch {
                    throw CommandFailure(
                        "batch \(index + 1) of \(batches.count) (\(applied) applied before it): \(error)")
                }
            }
            return (applied, unknown)
        }
        let failed = Fleet.printEach(fleet, results, failing: "update") { tally in
            "applied \(tally.applied) of \(updates.count)"
                + (tally.unknown.isEmpty
                    ? ""
                    : "; \(tally.unknown.count) unknown ids: \(tally.unknown.prefix(10).joined(separator: ", "))"
                        + (tally.unknown.count > 10 ? ", …" : ""))
        }
        if !failed.isEmpty { throw CommandFailure("updates failed on \(failed.joined(separator: ", "))") }
    }

    /// Parses the JSON Lines file; errors name the line and the field.
    static func read(_ path: String) throws -> [ItemUpdate] {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw ValidationError("\(path): cannot read")
            }
            data = contents
        }
        var updates: [ItemUpdate] = []
        let known: Set<String> = ["id", "in_stock", "price", "add_tags", "remove_tags", "removed"]
        for (index, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            let where_ = "\(path):\(index + 1)"
            guard !line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) else { continue }
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                throw ValidationError("\(where_): not a JSON object")
            }
            if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
                throw ValidationError(
                    "\(where_): unknown field \"\(unknown)\" (expected \(known.sorted().joined(separator: ", ")))")
            }
            let line_: Line
            do {
                line_ = try JSONDecoder().decode(Line.self, from: Data(line))
            } catch let DecodingError.typeMismatch(type, context) {
                throw ValidationError(
                    "\(where_): \(context.codingPath.map(\.stringValue).joined(separator: ".")): expected \(type)")
            } catch let DecodingError.keyNotFound(key, _) {
                throw ValidationError("\(where_): \(key.stringValue): required")
            } catch {
                throw ValidationError("\(where_): \(error)")
            }
            let update = ItemUpdate(
                itemID: line_.id, inStock: line_.in_stock, price: line_.price, addTags: line_.add_tags ?? [],
                removeTags: line_.remove_tags ?? [], removed: line_.removed ?? false)
            updates.append(update)
        }
        // The server validates too (ids, prices, tags); checking here names the line instead of the batch position.
        for start in stride(from: 0, to: updates.count, by: UpdateItemsRequest.maxItems) {
            do {
                try UpdateItemsRequest(
                    items: Array(updates[start..<min(start + UpdateItemsRequest.maxItems, updates.count)])
                )
                .validate()
            } catch {
                throw ValidationError("\(path): \(error) (items[i] counts from line \(start + 1))")
            }
        }
        return updates
    }
}

/// One line of the update file (snake_case keys, as in the catalogue's JSON Lines).
private struct Line: Decodable {
    var id: String
    var in_stock: Bool?
    var price: Double?
    var add_tags: [String]?
    var remove_tags: [String]?
    var removed: Bool?
}

/// `rankctl delete-user ID`: forget a user (right to be forgotten).
struct DeleteUserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete-user",
        abstract: "Delete a user from rankd: their embedding is never read again and server-side state is purged.",
        discussion: "With --servers every replica deletes the user; the command fails unless all acknowledged.")

    @Argument(help: "The user id.")
    var userID: String

    @OptionGroup var connection: AdminConnectionOptions

    func run() async throws {
        let fleet = try connection.fleet() ?? [connection.endpoint()]
        let results = await Fleet.onEach(fleet) { _, endpoint in try await endpoint.deleteUser(userID) }
        let failed = Fleet.printEach(fleet, results, failing: "delete-user") {
            "deleted \(userID)" + ($0.knownUser ? "" : " (not in the active snapshot; recorded all the same)")
        }
        if !failed.isEmpty { throw CommandFailure("delete-user failed on \(failed.joined(separator: ", "))") }
    }
}

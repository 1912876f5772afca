import ArgumentParser
import Foundation
import Snapshot

/// `rankctl inspect`: manifest, counts, file sizes and a few sample rows, without verifying.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a snapshot's manifest, counts, file sizes and sample rows.")

    @Argument(help: "Snapshot directory.")
    var directory: String

    @Option(help: "Sample rows to show per table.")
    var rows = 3

    @Flag(help: "Print manifest.json as stored and nothing else.")
    var manifestOnly = false

    func run() throws {
        try SnapshotCommandSupport.run("inspect") { () throws(SnapshotError) in
            let snapshot = try Snapshot.open(directory: directory)
            if manifestOnly {
                let text =
                    (try? String(contentsOfFile: directory + "/" + SnapshotFiles.manifest, encoding: .utf8)) ?? ""
                print(text, terminator: "")
                return
            }
            describe(snapshot)
        }
    }

    private func describe(_ snapshot: Snapshot) {
        let m = snapshot.manifest
        print("snapshot \(m.snapshotVersion) (format \(m.formatVersion)), created \(m.createdAt)")
        print("  dimension \(m.dimension), metric \(m.metric.rawValue), vectors \(m.vectorType.rawValue)")
        print(
            "  \(m.counts.users) users, \(m.counts.items) items, \(m.counts.categories) categories, "
                + "\(m.counts.brands) brands, \(m.counts.tags) tags")
        if let hnsw = m.build.hnsw {
            print("  hnsw m \(hnsw.m), efConstruction \(hnsw.efConstruction), seed \(hnsw.seed)")
        }
        if !m.labels.isEmpty {
            print("  labels: " + m.labels.sorted { $0.key < $1.key }.map { "\($0)=\($1)" }.joined(separator: ", "))
        }
        if !m.build.ignoredItemFields.isEmpty {
            print("  ignored item fields: " + m.build.ignoredItemFields.joined(separator: ", "))
        }
        print("  ranking: " + String(decoding: m.rankingConfigJSON, as: UTF8.self))
        print("files:")
        for entry in m.files {
            print(
                "  \(entry.name.padding(toLength: 20, withPad: " ", startingAt: 0)) "
                    + "\(SnapshotCommandSupport.byteCount(entry.size).padding(toLength: 11, withPad: " ", startingAt: 0)) xxh64 \(entry.xxh64)"
            )
        }
        let shown = max(0, rows)
        print("users:")
        for row in 0..<min(shown, snapshot.userIds.count) {
            print("  [\(row)] \(snapshot.userIds.id(at: row) ?? "?") \(preview(snapshot.userVectors.vector(at: row)))")
        }
        print("items:")
        for row in 0..<min(shown, snapshot.itemIds.count) { print("  " + item(snapshot, row)) }
        print("most popular:")
        for index in 0..<min(shown, snapshot.popularity.global.count) {
            print("  " + item(snapshot, Int(snapshot.popularity.global[index])))
        }
        print("categories (items):")
        for category in 0..<min(max(shown, 5), snapshot.categories.count) {
            print(
                "  \(snapshot.categories.id(at: category) ?? "?"): \(snapshot.popularity.itemCount(inCategory: category))"
            )
        }
    }

    private func item(_ snapshot: Snapshot, _ row: Int) -> String {
        let a = snapshot.attributes
        func name(_ table: IdTable, _ id: UInt32) -> String {
            id == ItemAttributes.none ? "-" : table.id(at: Int(id)) ?? "?"
        }
        let cents = a.priceCents[row]
        let price = cents == ItemAttributes.noPrice ? "-" : String(format: "%.2f", Double(cents) / 100)
        let tagNames = (0..<snapshot.tags.count).filter { a.tags[row] & (1 << UInt64($0)) != 0 }
            .map { snapshot.tags.id(at: $0) ?? "?" }
        return "[\(row)] \(snapshot.itemIds.id(at: row) ?? "?") category=\(name(snapshot.categories, a.category[row])) "
            + "brand=\(name(snapshot.brands, a.brand[row])) price=\(price) in_stock=\(a.inStock[row] == 1) "
            + "popularity=\(a.popularity[row]) created_at=\(a.createdAt[row]) tags=\(tagNames) "
            + preview(snapshot.itemVectors.vector(at: row))
    }

    private func preview(_ vector: [Float]) -> String {
        "[" + vector.prefix(4).map { String(format: "%.3f", $0) }.joined(separator: ", ")
            + (vector.count > 4 ? ", …]" : "]")
    }
}

import Foundation
import Snapshot
import TestSupport

/// A scratch directory with small, seeded snapshot inputs; removed when released.
final class SnapshotFixture {
    let root: String
    var users: String { root + "/users.npy" }
    var userIds: String { root + "/users.txt" }
    var items: String { root + "/items.npy" }
    var itemsMeta: String { root + "/items.jsonl" }
    var output: String { root + "/snap-v1" }

    let userVectors: [[Float]]
    let itemVectors: [[Float]]
    let itemLines: [String]
    let userIdList: [String]

    /// Writes `userCount` users and `itemCount` items of `dimension` seeded Gaussian floats, with a
    /// catalogue cycling through three categories, two brands and a few tags.
    init(userCount: Int = 40, itemCount: Int = 30, dimension: Int = 8, seed: UInt64 = 7) throws {
        root = NSTemporaryDirectory() + "snapshot-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var random = SeededGenerator(seed: seed)
        userVectors = (0..<userCount).map { _ in (0..<dimension).map { _ in random.nextGaussian() } }
        itemVectors = (0..<itemCount).map { _ in (0..<dimension).map { _ in random.nextGaussian() } }
        userIdList = (0..<userCount).map { "u_\($0)" }
        let tagSets = [#"["new"]"#, #"[]"#, #"["sale","new"]"#, #"["eco"]"#]
        itemLines = (0..<itemCount).map { row in
            let category = ["shoes", "hats", "bags"][row % 3]
            let brand = row % 5 == 4 ? "null" : "\"brand-\(row % 2)\""
            return #"{"id":"sku-\#(row)","category":"\#(category)","brand":\#(brand),"price":\#(row).25,"#
                + #""in_stock":\#(row % 10 != 0),"popularity":\#(Double((row * 37) % 11)),"created_at":\#(1_700_000_000 + row),"#
                + #""tags":\#(tagSets[row % 4]),"extra":{"ignored":true}}"#
        }
        try Self.writeNPY(users, rows: userVectors)
        try Self.writeNPY(items, rows: itemVectors)
        try write(userIds, userIdList.joined(separator: "\n") + "\n")
        try write(itemsMeta, itemLines.joined(separator: "\n") + "\n")
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func write(_ path: String, _ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func write(_ path: String, bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    var options: SnapshotBuildOptions {
        var options = SnapshotBuildOptions(
            users: users, userIds: userIds, items: items, itemsMeta: itemsMeta, output: output)
        options.threads = 1
        options.hnsw.efConstruction = 40
        return options
    }

    /// Builds with `options` (default: the fixture's) and returns the manifest.
    @discardableResult
    func build(_ configure: (inout SnapshotBuildOptions) -> Void = { _ in }) throws -> SnapshotManifest {
        var options = self.options
        configure(&options)
        return try SnapshotBuilder.build(options)
    }

    /// A `.npy` file from explicit header text and data, for malformed-input tests.
    static func npyBytes(header: String, version: UInt8 = 1, data: [UInt8]) -> [UInt8] {
        var dict = header
        let total = (10 + dict.utf8.count + 1 + 63) / 64 * 64
        dict += String(repeating: " ", count: total - 10 - dict.utf8.count - 1) + "\n"
        let length = dict.utf8.count
        return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0, UInt8(length & 0xFF), UInt8(length >> 8)]
            + Array(dict.utf8) + data
    }

    static func floatBytes(_ rows: [[Float]]) -> [UInt8] {
        rows.flatMap { $0 }.flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian, Array.init) }
    }

    static func writeNPY(_ path: String, rows: [[Float]]) throws {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows.count), \(rows.first?.count ?? 1)), }"
        try Data(npyBytes(header: header, data: floatBytes(rows))).write(to: URL(fileURLWithPath: path))
    }

    /// Entries of the fixture root other than the inputs (to prove failed builds leave nothing).
    func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: root)
            .filter { !["users.npy", "users.txt", "items.npy", "items.jsonl"].contains($0) }
    }
}

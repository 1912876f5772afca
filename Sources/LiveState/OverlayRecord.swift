import RankingModel

/// The live changes of one item, each field with the time it was accepted (Unix milliseconds; 0 = the
/// field was never changed). The log stores these, and the in-memory overlay is their merge: a field's
/// later change wins, so the merge of any prefix of the log is the same whatever was compacted.
///
/// Against a snapshot built at time T, only fields changed after T apply; older ones are assumed to be
/// in the snapshot already.
struct ItemChange: Equatable, Sendable {
    struct TagChange: Equatable, Sendable {
        var at: Int64
        var add: Bool
    }

    var itemID: String
    var removedAt: Int64 = 0
    var stockAt: Int64 = 0
    var inStock = false
    var priceAt: Int64 = 0
    var priceCents: Int64 = 0
    /// By tag name.
    var tags: [String: TagChange] = [:]

    /// The change `update` makes, accepted at `at`. Prices become cents as the snapshot builder stores
    /// them (`price` × 100, rounded).
    init(_ update: ItemUpdate, at: Int64) {
        itemID = update.itemID
        if update.removed { removedAt = at }
        if let inStock = update.inStock { (stockAt, self.inStock) = (at, inStock) }
        if let price = update.price { (priceAt, priceCents) = (at, Int64((price * 100).rounded())) }
        for tag in update.addTags { tags[tag] = TagChange(at: at, add: true) }
        for tag in update.removeTags { tags[tag] = TagChange(at: at, add: false) }
    }

    init(itemID: String) { self.itemID = itemID }

    /// Takes every field of `other` at least as recent as this one's.
    mutating func merge(_ other: ItemChange) {
        if other.removedAt > removedAt { removedAt = other.removedAt }
        if other.stockAt > 0 && other.stockAt >= stockAt { (stockAt, inStock) = (other.stockAt, other.inStock) }
        if other.priceAt > 0 && other.priceAt >= priceAt { (priceAt, priceCents) = (other.priceAt, other.priceCents) }
        for (tag, change) in other.tags where change.at >= (tags[tag]?.at ?? 0) { tags[tag] = change }
    }

    /// Drops every field changed at or before `horizon`; false when nothing is left.
    mutating func compact(olderThanOrAt horizon: Int64) -> Bool {
        if removedAt <= horizon { removedAt = 0 }
        if stockAt <= horizon { stockAt = 0 }
        if priceAt <= horizon { priceAt = 0 }
        tags = tags.filter { $0.value.at > horizon }
        return removedAt != 0 || stockAt != 0 || priceAt != 0 || !tags.isEmpty
    }

    /// The newest time any field changed.
    var latest: Int64 { max(removedAt, stockAt, priceAt, tags.values.map(\.at).max() ?? 0) }
}

/// A user deleted at `at` (Unix milliseconds).
struct UserDeletion: Equatable, Sendable {
    var userID: String
    var at: Int64
}

/// What one log record holds.
enum OverlayRecord: Equatable, Sendable {
    case items([ItemChange])
    case userDeletions([UserDeletion])

    var kind: UInt8 {
        switch self {
        case .items: 1
        case .userDeletions: 2
        }
    }
}

// MARK: Payload encoding (docs/SNAPSHOT_FORMAT.md, "The live overlay log")

/// Little-endian appends to a byte array.
struct LogByteWriter {
    var bytes: [UInt8] = []

    mutating func integer<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ value: String) {
        integer(UInt32(value.utf8.count))
        bytes.append(contentsOf: value.utf8)
    }

    mutating func pad(toMultipleOf alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }
}

/// Bounds-checked little-endian reads from untrusted bytes: every read checks what is left first.
struct LogByteReader {
    let bytes: ArraySlice<UInt8>
    private(set) var offset: Int

    struct Overrun: Error {}

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        offset = bytes.startIndex
    }

    var remaining: Int { bytes.endIndex - offset }

    mutating func integer<T: FixedWidthInteger>(_ type: T.Type) throws(Overrun) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw Overrun() }
        var value: T = 0
        for index in 0..<size { value |= T(bytes[offset + index]) << (8 * index) }
        offset += size
        return value
    }

    mutating func string(maxBytes: Int) throws(Overrun) -> String {
        let count = Int(try integer(UInt32.self))
        guard count <= maxBytes, remaining >= count else { throw Overrun() }
        defer { offset += count }
        guard let string = String(validating: bytes[offset..<offset + count], as: UTF8.self) else { throw Overrun() }
        return string
    }
}

extension OverlayRecord {
    /// The record's payload bytes.
    func encodePayload() -> [UInt8] {
        var writer = LogByteWriter()
        switch self {
        case .items(let changes):
            writer.integer(UInt32(changes.count))
            for change in changes {
                writer.string(change.itemID)
                writer.integer(change.removedAt)
                writer.integer(change.stockAt)
                writer.integer(UInt8(change.inStock ? 1 : 0))
                writer.integer(change.priceAt)
                writer.integer(change.priceCents)
                writer.integer(UInt32(change.tags.count))
                // Sorted, so equal states encode to equal bytes.
                for (tag, tagChange) in change.tags.sorted(by: { $0.key < $1.key }) {
                    writer.string(tag)
                    writer.integer(tagChange.at)
                    writer.integer(UInt8(tagChange.add ? 1 : 0))
                }
            }
        case .userDeletions(let deletions):
            writer.integer(UInt32(deletions.count))
            for deletion in deletions {
                writer.string(deletion.userID)
                writer.integer(deletion.at)
            }
        }
        return writer.bytes
    }

    /// Decodes a payload of `kind`; nil when the bytes do not form one (the frame's checksum passed, so
    /// this means a writer bug or a future format, and the log refuses to guess).
    static func decode(kind: UInt8, payload: ArraySlice<UInt8>) -> OverlayRecord? {
        var reader = LogByteReader(payload)
        let limit = UpdateItemsRequest.maxNameBytes
        do throws(LogByteReader.Overrun) {
            let count = Int(try reader.integer(UInt32.self))
            switch kind {
            case 1:
                var changes: [ItemChange] = []
                for _ in 0..<count {
                    var change = ItemChange(itemID: try reader.string(maxBytes: limit))
                    change.removedAt = try reader.integer(Int64.self)
                    change.stockAt = try reader.integer(Int64.self)
                    change.inStock = try reader.integer(UInt8.self) != 0
                    change.priceAt = try reader.integer(Int64.self)
                    change.priceCents = try reader.integer(Int64.self)
                    let tagCount = Int(try reader.integer(UInt32.self))
                    for _ in 0..<tagCount {
                        let tag = try reader.string(maxBytes: limit)
                        let at = try reader.integer(Int64.self)
                        change.tags[tag] = ItemChange.TagChange(at: at, add: try reader.integer(UInt8.self) != 0)
                    }
                    changes.append(change)
                }
                guard reader.remaining == 0 else { return nil }
                return .items(changes)
            case 2:
                var deletions: [UserDeletion] = []
                for _ in 0..<count {
                    let id = try reader.string(maxBytes: limit)
                    deletions.append(UserDeletion(userID: id, at: try reader.integer(Int64.self)))
                }
                guard reader.remaining == 0 else { return nil }
                return .userDeletions(deletions)
            default:
                return nil
            }
        } catch {
            return nil
        }
    }
}

import Foundation

/// One item line of the catalogue (JSON Lines), as the builder reads it:
///
/// ```json
/// {"id": "sku-1", "category": "shoes", "brand": "acme", "price": 19.99, "in_stock": true,
///  "popularity": 12.5, "created_at": 1700000000, "tags": ["new", "sale"]}
/// ```
/// Only `id` (a non-empty string) is required. Defaults: no category, no brand, no price,
/// `in_stock` true, `popularity` 0, `created_at` 0, no tags. `null` means absent. Any other field is
/// ignored (its name is recorded in the manifest) and does not fail the build.
struct ItemRecord {
    var id: String
    var category: String?
    var brand: String?
    var priceCents: Int64?
    var inStock = true
    var popularity: Float = 0
    var createdAt: Int64 = 0
    var tags: [String] = []
    var unknownFields: [String] = []

    static let knownFields: Set<String> = [
        "id", "category", "brand", "price", "in_stock", "popularity", "created_at", "tags",
    ]

    /// Parses one line; `file`/`line` name it in errors.
    static func parse(_ bytes: ArraySlice<UInt8>, file: String, line: Int) throws(SnapshotError) -> ItemRecord {
        guard String(validating: bytes, as: UTF8.self) != nil else { throw .invalidUTF8(file: file, line: line) }
        do {
            return try JSONDecoder().decode(ItemRecord.Decoded.self, from: Data(bytes)).record
        } catch let error as SnapshotError {
            throw error
        } catch let DecodingError.keyNotFound(key, _) {
            throw .invalidField(file: file, line: line, field: key.stringValue, reason: "required field is missing")
        } catch let DecodingError.typeMismatch(type, context) {
            throw .invalidField(file: file, line: line, field: path(context), reason: "expected \(typeName(type))")
        } catch let DecodingError.valueNotFound(type, context) {
            throw .invalidField(file: file, line: line, field: path(context), reason: "expected \(typeName(type))")
        } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
            throw .invalidField(file: file, line: line, field: path(context), reason: context.debugDescription)
        } catch let ItemFieldError.invalid(field, reason) {
            throw .invalidField(file: file, line: line, field: field, reason: reason)
        } catch {
            throw .malformedJSON(file: file, line: line, reason: shortReason(error))
        }
    }

    private static func path(_ context: DecodingError.Context) -> String {
        context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int64.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        default: "\(type)"
        }
    }

    private static func shortReason(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            if let underlying = context.underlyingError { return "\(underlying)" }
            return context.debugDescription
        }
        return "\(error)"
    }

    private enum ItemFieldError: Error {
        case invalid(String, String)
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    private struct Decoded: Decodable {
        var record: ItemRecord

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: AnyKey.self)
            func key(_ name: String) -> AnyKey { AnyKey(stringValue: name) }
            let id = try c.decode(String.self, forKey: key("id"))
            guard !id.isEmpty else { throw ItemFieldError.invalid("id", "empty id") }
            var record = ItemRecord(id: id)
            record.category = try c.decodeIfPresent(String.self, forKey: key("category"))
            record.brand = try c.decodeIfPresent(String.self, forKey: key("brand"))
            if let price = try c.decodeIfPresent(Double.self, forKey: key("price")) {
                guard price.isFinite, price >= 0, price < 9e15 else {
                    throw ItemFieldError.invalid("price", "must be a finite number in 0..<9e15, got \(price)")
                }
                record.priceCents = Int64((price * 100).rounded())
            }
            record.inStock = try c.decodeIfPresent(Bool.self, forKey: key("in_stock")) ?? true
            if let popularity = try c.decodeIfPresent(Double.self, forKey: key("popularity")) {
                guard Float(popularity).isFinite else {
                    throw ItemFieldError.invalid("popularity", "must be a finite Float32, got \(popularity)")
                }
                record.popularity = Float(popularity)
            }
            // Decoded as a number and checked, so 1.5 is reported against the field, not as bad JSON.
            if let createdAt = try c.decodeIfPresent(Double.self, forKey: key("created_at")) {
                guard createdAt.rounded() == createdAt, abs(createdAt) < 0x1p53 else {
                    throw ItemFieldError.invalid("created_at", "must be whole unix seconds, got \(createdAt)")
                }
                record.createdAt = Int64(createdAt)
            }
            record.tags = try c.decodeIfPresent([String].self, forKey: key("tags")) ?? []
            record.unknownFields = c.allKeys.map(\.stringValue).filter { !ItemRecord.knownFields.contains($0) }
            self.record = record
        }
    }
}

/// Assigns dense ids to names in first-seen order (categories, brands, tags).
struct NameDictionary {
    private(set) var writer: IdTableWriter
    private var ids: [String: UInt32] = [:]

    init(sourceFile: String) { writer = IdTableWriter(sourceFile: sourceFile) }

    var count: Int { writer.count }

    mutating func id(for name: String) -> UInt32 {
        if let id = ids[name] { return id }
        let id = UInt32(writer.count)
        ids[name] = id
        writer.append(name, line: writer.count + 1)
        return id
    }

    func existingId(for name: String) -> UInt32? { ids[name] }
}

import RankingProtos

/// One `.proto` file of Protos/ as gRPC server reflection serves it: the serialized
/// `google.protobuf.FileDescriptorProto` and what it defines, by fully qualified name.
///
/// Read from the FileDescriptorSet that `make protos` generates (`rankd_descriptor_set`), so a
/// service added to Protos/ is described with no code change here.
public struct ProtoFileDescriptor: Sendable {
    /// The file's name, e.g. `ranking/v1/ranker.proto`.
    public var name: String
    public var package: String
    /// Names of the files it imports.
    public var dependencies: [String]
    /// The serialized FileDescriptorProto, exactly as protoc wrote it.
    public var bytes: [UInt8]
    /// Fully qualified names (no leading dot) of its messages, fields, enums, enum values,
    /// services and methods.
    public var symbols: Set<String>
    /// Fully qualified service names.
    public var services: [String]
    /// Extensions it declares: the extended message (fully qualified) and the field number.
    public var extensions: [(extendee: String, number: Int32)]
    /// Fully qualified message names.
    public var messages: Set<String>
}

/// The descriptors of every file in Protos/ (and their imports).
public enum ProtoDescriptorSet {
    /// Parsed once, on first use.
    public static let files: [ProtoFileDescriptor] = {
        let bytes = Array(UnsafeBufferPointer(start: rankd_descriptor_set(), count: rankd_descriptor_set_size()))
        do {
            return try parse(set: bytes)
        } catch {
            // The bytes are protoc's own output, committed and checked by `make check-protos`.
            preconditionFailure("generated descriptor set is malformed: \(error)")
        }
    }()

    /// Parses a serialized `google.protobuf.FileDescriptorSet`.
    ///
    /// - Throws: ``ProtoWireError`` when the bytes are not valid protobuf.
    public static func parse(set bytes: [UInt8]) throws(ProtoWireError) -> [ProtoFileDescriptor] {
        var files: [ProtoFileDescriptor] = []
        try ProtoWireReader.fields(bytes[...]) { (number, value) throws(ProtoWireError) in
            if number == 1, case .bytes(let file) = value { files.append(try parse(file: Array(file))) }
        }
        return files
    }

    /// Parses one serialized `google.protobuf.FileDescriptorProto`.
    static func parse(file bytes: [UInt8]) throws(ProtoWireError) -> ProtoFileDescriptor {
        var file = ProtoFileDescriptor(
            name: "", package: "", dependencies: [], bytes: bytes, symbols: [], services: [], extensions: [],
            messages: [])
        var messageBodies: [ArraySlice<UInt8>] = []
        var enumBodies: [ArraySlice<UInt8>] = []
        var serviceBodies: [ArraySlice<UInt8>] = []
        var extensionBodies: [ArraySlice<UInt8>] = []
        try ProtoWireReader.fields(bytes[...]) { (number, value) throws(ProtoWireError) in
            guard case .bytes(let body) = value else { return }
            switch number {
            case 1: file.name = String(decoding: body, as: UTF8.self)
            case 2: file.package = String(decoding: body, as: UTF8.self)
            case 3: file.dependencies.append(String(decoding: body, as: UTF8.self))
            case 4: messageBodies.append(body)
            case 5: enumBodies.append(body)
            case 6: serviceBodies.append(body)
            case 7: extensionBodies.append(body)
            default: break
            }
        }
        let scope = file.package.isEmpty ? "" : file.package + "."
        for body in messageBodies { try addMessage(body, scope: scope, to: &file) }
        for body in enumBodies { try addEnum(body, scope: scope, to: &file) }
        for body in extensionBodies { try addExtension(body, scope: scope, to: &file) }
        for body in serviceBodies {
            var name = ""
            var methods: [String] = []
            try ProtoWireReader.fields(body) { (number, value) throws(ProtoWireError) in
                guard case .bytes(let field) = value else { return }
                if number == 1 { name = String(decoding: field, as: UTF8.self) }
                if number == 2 { methods.append(try nameField(field)) }
            }
            let service = scope + name
            file.services.append(service)
            file.symbols.insert(service)
            for method in methods { file.symbols.insert(service + "." + method) }
        }
        return file
    }

    /// A message, its fields, and (recursively) its nested messages, enums and extensions.
    private static func addMessage(
        _ body: ArraySlice<UInt8>, scope: String, to file: inout ProtoFileDescriptor
    ) throws(ProtoWireError) {
        let name = try nameField(body)
        let full = scope + name
        file.symbols.insert(full)
        file.messages.insert(full)
        var nested: [(Int, ArraySlice<UInt8>)] = []
        try ProtoWireReader.fields(body) { (number, value) throws(ProtoWireError) in
            guard case .bytes(let field) = value else { return }
            switch number {
            case 2: file.symbols.insert(full + "." + (try nameField(field)))
            case 3, 4, 6: nested.append((number, field))
            default: break
            }
        }
        for (number, field) in nested {
            switch number {
            case 3: try addMessage(field, scope: full + ".", to: &file)
            case 4: try addEnum(field, scope: full + ".", to: &file)
            default: try addExtension(field, scope: full + ".", to: &file)
            }
        }
    }

    /// An enum and its values (which protobuf scopes beside the enum, not inside it).
    private static func addEnum(
        _ body: ArraySlice<UInt8>, scope: String, to file: inout ProtoFileDescriptor
    ) throws(ProtoWireError) {
        var values: [String] = []
        try ProtoWireReader.fields(body) { (number, value) throws(ProtoWireError) in
            if number == 2, case .bytes(let field) = value { values.append(try nameField(field)) }
        }
        file.symbols.insert(scope + (try nameField(body)))
        for value in values { file.symbols.insert(scope + value) }
    }

    private static func addExtension(
        _ body: ArraySlice<UInt8>, scope: String, to file: inout ProtoFileDescriptor
    ) throws(ProtoWireError) {
        var extendee = ""
        var number: Int32 = 0
        try ProtoWireReader.fields(body) { (field, value) throws(ProtoWireError) in
            switch (field, value) {
            case (2, .bytes(let text)): extendee = String(decoding: text, as: UTF8.self)
            case (3, .varint(let value)): number = Int32(truncatingIfNeeded: value)
            default: break
            }
        }
        file.symbols.insert(scope + (try nameField(body)))
        file.extensions.append((extendee.hasPrefix(".") ? String(extendee.dropFirst()) : extendee, number))
    }

    /// Field 1 (`name`) of a descriptor message.
    private static func nameField(_ body: ArraySlice<UInt8>) throws(ProtoWireError) -> String {
        var name = ""
        try ProtoWireReader.fields(body) { (number, value) throws(ProtoWireError) in
            if number == 1, case .bytes(let text) = value { name = String(decoding: text, as: UTF8.self) }
        }
        return name
    }
}

/// Why bytes are not a protobuf message.
public struct ProtoWireError: Error, CustomStringConvertible {
    public var description: String
}

/// The protobuf wire format, read without a schema: enough to walk descriptor messages.
enum ProtoWireReader {
    enum Value {
        case varint(UInt64)
        case bytes(ArraySlice<UInt8>)
        case fixed
    }

    /// Calls `body` with each field's number and value, in order.
    static func fields(
        _ bytes: ArraySlice<UInt8>, _ body: (Int, Value) throws(ProtoWireError) -> Void
    ) throws(ProtoWireError) {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let key = try varint(bytes, &index)
            let number = Int(key >> 3)
            switch key & 7 {
            case 0: try body(number, .varint(try varint(bytes, &index)))
            case 1, 5:
                let width = key & 7 == 1 ? 8 : 4
                guard bytes.endIndex - index >= width else {
                    throw ProtoWireError(description: "truncated fixed field")
                }
                index += width
                try body(number, .fixed)
            case 2:
                let length = try varint(bytes, &index)
                guard length <= UInt64(bytes.endIndex - index) else {
                    throw ProtoWireError(description: "field \(number) is longer than its message")
                }
                let end = index + Int(length)
                try body(number, .bytes(bytes[index..<end]))
                index = end
            default:
                throw ProtoWireError(description: "unsupported wire type \(key & 7) at field \(number)")
            }
        }
    }

    private static func varint(_ bytes: ArraySlice<UInt8>, _ index: inout Int) throws(ProtoWireError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.endIndex, shift < 64 {
            let byte = bytes[index]
            index += 1
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        throw ProtoWireError(description: "truncated or overlong varint")
    }
}

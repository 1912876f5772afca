package import CProtobufC
package import GRPCCore
package import NIOCore

/// The one place protobuf-c's generic pack/unpack is called. Message-specific codecs build on it
/// so that C types never leave this module.
package enum ProtobufCodec {
    /// Unpacks `buffer` as the message `descriptor` describes and lends it to `body`; the C
    /// message is freed when `body` returns, so copy out what must outlive the call.
    ///
    /// - Throws: `INVALID_ARGUMENT` naming the message type when the bytes are not a valid
    ///   encoding, or whatever `body` throws.
    ///
    /// The message type is given by its generated `*__init` function: it stores the address of
    /// the type's descriptor in the message, which is the one reliable way to reach that C
    /// global (`withUnsafePointer(to:)` on an imported `const` may point at a temporary copy in
    /// optimised builds).
    package static func decode<Message, Result>(
        _ buffer: ByteBuffer, initializer: (UnsafeMutablePointer<Message>) -> Void,
        arena: CArena? = nil, _ body: (UnsafePointer<Message>) throws(GRPCStatus) -> Result
    ) throws(GRPCStatus) -> Result {
        let descriptor = descriptor(of: initializer)
        var empty: UInt8 = 0
        let unpacked = buffer.withUnsafeReadableBytes { bytes in
            func unpack(_ allocator: UnsafeMutablePointer<ProtobufCAllocator>?) -> UnsafeMutablePointer<
                ProtobufCMessage
            >? {
                if let base = bytes.baseAddress, bytes.count > 0 {
                    return protobuf_c_message_unpack(
                        descriptor, allocator, bytes.count, base.assumingMemoryBound(to: UInt8.self))
                }
                // An empty message is valid protobuf; protobuf-c still wants a non-null pointer.
                return protobuf_c_message_unpack(descriptor, allocator, 0, &empty)
            }
            return arena.map { $0.withAllocator { unpack($0) } } ?? unpack(nil)
        }
        guard let unpacked else {
            let name = String(cString: descriptor.pointee.name)
            throw GRPCStatus(
                .invalidArgument,
                "request body is not a valid \(name) protobuf message (\(buffer.readableBytes) bytes)")
        }
        // With an arena the memory goes when the arena is reset; without, free it here.
        defer { if arena == nil { protobuf_c_message_free_unpacked(unpacked, nil) } }
        return try UnsafeRawPointer(unpacked).withMemoryRebound(to: Message.self, capacity: 1) {
            (message) throws(GRPCStatus) -> Result in
            try body(message)
        }
    }

    /// The descriptor of the message type that `initializer` initialises.
    package static func descriptor<Message>(
        of initializer: (UnsafeMutablePointer<Message>) -> Void
    ) -> UnsafePointer<ProtobufCMessageDescriptor> {
        withUnsafeTemporaryAllocation(of: Message.self, capacity: 1) { message in
            initializer(message.baseAddress!)
            return UnsafeMutableRawPointer(message.baseAddress!).assumingMemoryBound(to: ProtobufCMessage.self).pointee
                .descriptor
        }
    }

    /// Packs a message whose first field is its `ProtobufCMessage` base into a new buffer.
    package static func encode<Message>(_ message: UnsafePointer<Message>, allocator: ByteBufferAllocator) -> ByteBuffer
    {
        UnsafeRawPointer(message).withMemoryRebound(to: ProtobufCMessage.self, capacity: 1) { base in
            let size = protobuf_c_message_get_packed_size(base)
            var buffer = allocator.buffer(capacity: size)
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
                size == 0 ? 0 : protobuf_c_message_pack(base, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            return buffer
        }
    }

    /// A C string field as a Swift string (protobuf-c uses a shared empty string for unset ones).
    package static func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
        pointer.map { String(cString: $0) } ?? ""
    }

    /// A repeated string field as Swift strings.
    package static func strings(_ array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ count: Int) -> [String]
    {
        guard let array, count > 0 else { return [] }
        return (0..<count).map { string(array[$0]) }
    }

    /// Bytes of a `bytes` field.
    package static func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
        guard data.len > 0, let base = data.data else { return [] }
        return Array(UnsafeBufferPointer(start: base, count: data.len))
    }
}

package import CProtobufC
import Glibc

/// A bump allocator for the C side of one request: protobuf-c's unpack allocations and the
/// structs and strings of a message being packed. Everything is freed at once by `reset()`
/// (which keeps the first block for the next request) or `deinit`.
///
/// Not thread-safe: one arena per event loop (or per call).
package final class CArena {
    private var blocks: [(pointer: UnsafeMutableRawPointer, size: Int)] = []
    private var offset = 0
    private let blockSize: Int

    /// Creates an arena that grows in blocks of at least `blockSize` bytes.
    package init(blockSize: Int = 64 * 1024) {
        self.blockSize = blockSize
    }

    deinit {
        for block in blocks { free(block.pointer) }
    }

    /// `byteCount` zeroed bytes aligned to 16.
    package func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let size = (max(byteCount, 1) + 15) & ~15
        if blocks.isEmpty || offset + size > blocks[blocks.count - 1].size {
            let capacity = max(blockSize, size)
            guard let pointer = malloc(capacity) else { fatalError("out of memory allocating \(capacity) bytes") }
            blocks.append((pointer, capacity))
            offset = 0
        }
        let pointer = blocks[blocks.count - 1].pointer + offset
        offset += size
        memset(pointer, 0, size)
        return pointer
    }

    /// Zeroed storage for `count` values of `T`.
    package func allocate<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        precondition(MemoryLayout<T>.alignment <= 16)
        return allocate(byteCount: MemoryLayout<T>.stride * count).bindMemory(to: T.self, capacity: count)
    }

    /// A NUL-terminated copy of `string`.
    package func cString(_ string: String) -> UnsafeMutablePointer<CChar> {
        var string = string
        return string.withUTF8 { bytes in
            let pointer = allocate(byteCount: bytes.count + 1).assumingMemoryBound(to: CChar.self)
            if let base = bytes.baseAddress {
                UnsafeMutableRawPointer(pointer).copyMemory(from: base, byteCount: bytes.count)
            }
            pointer[bytes.count] = 0
            return pointer
        }
    }

    /// An array of C strings.
    package func cStrings(_ strings: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        guard !strings.isEmpty else { return nil }
        let array = allocate(UnsafeMutablePointer<CChar>?.self, count: strings.count)
        for (index, string) in strings.enumerated() { array[index] = cString(string) }
        return array
    }

    /// Frees everything but the first block, for reuse by the next request.
    package func reset() {
        if blocks.count > 1 {
            for block in blocks[1...] { free(block.pointer) }
            blocks.removeSubrange(1...)
        }
        offset = 0
    }

    /// Runs `body` with a protobuf-c allocator that allocates from this arena (free is a no-op:
    /// the arena releases everything at once).
    package func withAllocator<R>(_ body: (UnsafeMutablePointer<ProtobufCAllocator>) throws -> R) rethrows -> R {
        var allocator = ProtobufCAllocator(
            alloc: { data, size in
                Unmanaged<CArena>.fromOpaque(data!).takeUnretainedValue().allocate(byteCount: size)
            },
            free: { _, _ in },
            allocator_data: Unmanaged.passUnretained(self).toOpaque())
        return try body(&allocator)
    }
}

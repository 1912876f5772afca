/// xxHash64 (Yann Collet's XXH64, spec: github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md),
/// implemented in software with no dependency. Used for snapshot file checksums and for the
/// on-disk id hash tables; both formats pin the algorithm and seed, so this must never change.
///
/// Throughput is a few GB/s on one core: a full checksum pass over a snapshot is I/O bound.
public enum XXHash64 {
    private static let prime1: UInt64 = 11_400_714_785_074_694_791
    private static let prime2: UInt64 = 14_029_467_366_897_019_727
    private static let prime3: UInt64 = 1_609_587_929_392_839_161
    private static let prime4: UInt64 = 9_650_029_242_287_828_579
    private static let prime5: UInt64 = 2_870_177_450_012_600_261

    @inline(__always)
    private static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }

    @inline(__always)
    private static func round(_ acc: UInt64, _ lane: UInt64) -> UInt64 {
        rotl(acc &+ lane &* prime2, 31) &* prime1
    }

    @inline(__always)
    private static func merge(_ acc: UInt64, _ value: UInt64) -> UInt64 {
        (acc ^ round(0, value)) &* prime1 &+ prime4
    }

    /// The four accumulator lanes of XXH64's 32-byte stripe loop.
    private struct Lanes: Sendable {
        var v1, v2, v3, v4: UInt64

        init(seed: UInt64) {
            v1 = seed &+ prime1 &+ prime2
            v2 = seed &+ prime2
            v3 = seed
            v4 = seed &- prime1
        }

        /// Consumes every whole 32-byte stripe of `bytes`; returns the bytes consumed.
        mutating func consume(_ bytes: UnsafeRawBufferPointer) -> Int {
            @inline(__always) func u64(_ at: Int) -> UInt64 {
                UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt64.self))
            }
            var offset = 0
            while offset + 32 <= bytes.count {
                v1 = round(v1, u64(offset))
                v2 = round(v2, u64(offset + 8))
                v3 = round(v3, u64(offset + 16))
                v4 = round(v4, u64(offset + 24))
                offset += 32
            }
            return offset
        }

        /// The state after all stripes: lanes merged (inputs ≥ 32 bytes) or the short-input start,
        /// plus the total length.
        func converge(seed: UInt64, length: Int) -> UInt64 {
            var h: UInt64
            if length >= 32 {
                h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
                h = merge(h, v1)
                h = merge(h, v2)
                h = merge(h, v3)
                h = merge(h, v4)
            } else {
                h = seed &+ prime5
            }
            return h &+ UInt64(length)
        }
    }

    /// The XXH64 hash of `bytes` with `seed`. O(n); no allocation.
    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        var lanes = Lanes(seed: seed)
        let consumed = lanes.consume(bytes)
        return finish(
            lanes.converge(seed: seed, length: bytes.count), tail: UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
    }

    /// Incremental XXH64: feed bytes in any split with `update`, then `finalize`. Gives the same value
    /// as `hash(_:seed:)` over the concatenation; used to checksum files while streaming them.
    public struct Hasher: Sendable {
        private var lanes: Lanes
        private let seed: UInt64
        private var total = 0
        private var pending: [UInt8] = []

        public init(seed: UInt64 = 0) {
            self.seed = seed
            lanes = Lanes(seed: seed)
            pending.reserveCapacity(32)
        }

        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            total += bytes.count
            var offset = 0
            if !pending.isEmpty {
                let take = min(32 - pending.count, bytes.count)
                pending.append(contentsOf: bytes[0..<take])
                offset = take
                guard pending.count == 32 else { return }
                _ = pending.withUnsafeBytes { lanes.consume($0) }
                pending.removeAll(keepingCapacity: true)
            }
            offset += lanes.consume(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            pending.append(contentsOf: bytes[offset...])
        }

        public func finalize() -> UInt64 {
            let state = lanes.converge(seed: seed, length: total)
            return pending.withUnsafeBytes { XXHash64.finish(state, tail: $0) }
        }
    }

    /// The tail and avalanche steps shared by one-shot and incremental hashing.
    private static func finish(_ state: UInt64, tail bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h = state
        var offset = 0
        while offset + 8 <= bytes.count {
            h ^= round(0, UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
            h = rotl(h, 27) &* prime1 &+ prime4
            offset += 8
        }
        if offset + 4 <= bytes.count {
            let word = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            h ^= UInt64(word) &* prime1
            h = rotl(h, 23) &* prime2 &+ prime3
            offset += 4
        }
        while offset < bytes.count {
            h ^= UInt64(bytes[offset]) &* prime5
            h = rotl(h, 11) &* prime1
            offset += 1
        }
        h ^= h >> 33
        h &*= prime2
        h ^= h >> 29
        h &*= prime3
        h ^= h >> 32
        return h
    }

    /// The XXH64 hash of a string's UTF-8 bytes.
    public static func hash(_ string: String, seed: UInt64 = 0) -> UInt64 {
        var copy = string
        return copy.withUTF8 { hash(UnsafeRawBufferPointer($0), seed: seed) }
    }
}

/// Maps the arbitrary `Int32` ids of one call (rows, categories, brands) to dense slots
/// `0 ..< count`, so per-id counters are plain arrays indexed by slot.
///
/// Open addressing with linear probing over a power-of-two table at most half full. Entries are
/// stamped with the call's generation, so `reset` empties the table in O(1) instead of clearing
/// it; memory grows to the largest call seen and is then reused (no allocation in steady state).
/// Owned by `Reranker`, which calls `free()` in `deinit`.
struct DenseIdMap {
    private var keys = ScratchBuffer<Int32>(filler: 0)
    private var values = ScratchBuffer<Int32>(filler: 0)
    private var stamps = ScratchBuffer<UInt32>(filler: 0)
    private var mask = 0
    private var shift: UInt64 = 64
    private var generation: UInt32 = 0
    /// Distinct ids inserted since the last `reset`.
    private(set) var count = 0

    /// Empties the map and makes room for `expected` distinct ids. O(1) unless it must grow.
    mutating func reset(expected: Int) {
        var size = 16
        while size < 2 * expected { size <<= 1 }
        let grew = size > stamps.capacity
        keys.reserve(size)
        values.reserve(size)
        stamps.reserve(size)
        mask = size - 1
        shift = UInt64(64 - size.trailingZeroBitCount)
        generation &+= 1
        if generation == 0 || grew {
            // A wrapped generation could match stale stamps; fresh memory is already zeroed.
            stamps.prepare(count: stamps.capacity, value: 0)
            generation = 1
        }
        count = 0
    }

    @inline(__always)
    private func home(_ key: Int32) -> Int {
        // Fibonacci hashing: the high bits of the product are well mixed even for sequential ids.
        Int(truncatingIfNeeded: (UInt64(UInt32(bitPattern: key)) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The slot of `key`, inserting it (as slot `count`) when absent; `inserted` says which.
    @inline(__always)
    mutating func slot(for key: Int32) -> (slot: Int32, inserted: Bool) {
        var p = home(key)
        while true {
            if stamps[p] != generation {
                stamps[p] = generation
                keys[p] = key
                values[p] = Int32(truncatingIfNeeded: count)
                count += 1
                return (values[p], true)
            }
            if keys[p] == key { return (values[p], false) }
            p = (p + 1) & mask
        }
    }

    /// The slot of `key`, or nil when it was not inserted since the last `reset`.
    func lookup(_ key: Int32) -> Int32? {
        var p = home(key)
        while stamps[p] == generation {
            if keys[p] == key { return values[p] }
            p = (p + 1) & mask
        }
        return nil
    }

    func free() {
        keys.free()
        values.free()
        stamps.free()
    }
}

import Snapshot
import UserEvents

/// The items of one snapshot under their event keys (``EventKey/item(_:)``): the key of every row, and
/// the row of a key. Recorded events name items by key, so they outlive snapshot swaps (a row number
/// means a different item in the next snapshot; a key does not).
///
/// Built once per snapshot at activation (one hash per item id, off the request path); 16 bytes per
/// item: the key array (8) and an open-addressing table of rows at load factor ≤ 1/2 (4 × 2).
/// Immutable, thread-safe.
struct ItemKeyIndex: Sendable {
    private let keys: [UInt64]
    private let table: [Int32]
    private let mask: Int

    init(ids: IdTable) {
        var keys = [UInt64](repeating: 0, count: ids.count)
        var capacity = 2
        while capacity < 2 * ids.count { capacity <<= 1 }
        var table = [Int32](repeating: -1, count: capacity)
        let mask = capacity - 1
        for row in 0..<ids.count {
            // A corrupt id reads as empty; structure verification refuses such snapshots before they serve.
            let key = ids.idBytes(at: row).map { EventKey.item(utf8: $0) } ?? 0
            keys[row] = key
            var slot = Self.slot(key, mask)
            while table[slot] >= 0 { slot = (slot + 1) & mask }
            table[slot] = Int32(row)
        }
        self.keys = keys
        self.table = table
        self.mask = mask
    }

    @inline(__always)
    private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        // The key is already an xxHash64: its low bits are uniform.
        Int(truncatingIfNeeded: key) & mask
    }

    /// The row of the item with `key` in this snapshot, or nil. O(1) expected, no allocation.
    func row(for key: UInt64) -> Int32? {
        var slot = Self.slot(key, mask)
        while true {
            let row = table[slot]
            if row < 0 { return nil }
            if keys[Int(row)] == key { return row }
            slot = (slot + 1) & mask
        }
    }
}

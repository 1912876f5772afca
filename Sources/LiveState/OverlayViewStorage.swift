import Snapshot

/// One copy of a snapshot's overlay view: the memory behind ``OverlayColumns``. Columns are copied
/// from the snapshot the first time a change touches them (a catalogue whose prices never change
/// live keeps reading the mapped price column); the bitsets are allocated at the first removal or
/// deletion.
///
/// Not thread-safe on its own: ``OverlayBinding`` mutates a copy only while no reader can see it.
/// (`@unchecked Sendable` rests on that protocol.)
final class OverlayViewStorage: @unchecked Sendable {
    private let snapshot: Snapshot
    private var inStock: UnsafeMutableBufferPointer<UInt8>?
    private var priceCents: UnsafeMutableBufferPointer<Int64>?
    private var tags: UnsafeMutableBufferPointer<UInt64>?
    private var removed: UnsafeMutableBufferPointer<UInt64>?
    private var deletedUsers: UnsafeMutableBufferPointer<UInt64>?
    private let tagDeltas = UnsafeMutableBufferPointer<Int>.allocate(capacity: 64)
    private var inStockDelta = 0
    private var removedCount = 0

    init(snapshot: Snapshot) {
        self.snapshot = snapshot
        tagDeltas.initialize(repeating: 0)
    }

    deinit {
        inStock?.deallocate()
        priceCents?.deallocate()
        tags?.deallocate()
        removed?.deallocate()
        deletedUsers?.deallocate()
        tagDeltas.deallocate()
    }

    var columns: OverlayColumns {
        let attributes = snapshot.attributes
        return OverlayColumns(
            inStock: inStock.map(UnsafeBufferPointer.init) ?? attributes.inStock.buffer,
            priceCents: priceCents.map(UnsafeBufferPointer.init) ?? attributes.priceCents.buffer,
            tags: tags.map(UnsafeBufferPointer.init) ?? attributes.tags.buffer,
            removedItems: removed.map(UnsafeBufferPointer.init) ?? UnsafeBufferPointer(start: nil, count: 0),
            deletedUsers: deletedUsers.map(UnsafeBufferPointer.init) ?? UnsafeBufferPointer(start: nil, count: 0),
            removedItemCount: removedCount, inStockDelta: inStockDelta, tagDeltas: UnsafeBufferPointer(tagDeltas))
    }

    /// Applies resolved changes. O(changes), plus O(rows) the first time a column is touched.
    func apply(_ changes: [ResolvedChange]) {
        for change in changes {
            switch change {
            case .removeItem(let row):
                if setBit(&removed, row, words: (snapshot.attributes.count + 63) / 64) { removedCount += 1 }
            case .deleteUser(let row):
                setBit(&deletedUsers, row, words: (snapshot.userIds.count + 63) / 64)
            case .stock(let row, let value):
                let column = materialise(&inStock, from: snapshot.attributes.inStock.buffer)
                let new: UInt8 = value ? 1 : 0
                inStockDelta += Int(new) - Int(column[row])
                column[row] = new
            case .price(let row, let cents):
                materialise(&priceCents, from: snapshot.attributes.priceCents.buffer)[row] = cents
            case .tag(let row, let bit, let add):
                let column = materialise(&tags, from: snapshot.attributes.tags.buffer)
                let mask: UInt64 = 1 << UInt64(bit)
                let had = column[row] & mask != 0
                guard had != add else { continue }
                column[row] = add ? column[row] | mask : column[row] & ~mask
                tagDeltas[bit] += add ? 1 : -1
            }
        }
    }

    @discardableResult
    private func materialise<T>(
        _ column: inout UnsafeMutableBufferPointer<T>?, from source: UnsafeBufferPointer<T>
    ) -> UnsafeMutableBufferPointer<T> {
        if let column { return column }
        let copy = UnsafeMutableBufferPointer<T>.allocate(capacity: max(source.count, 1))
        _ = copy.initialize(from: source)
        column = UnsafeMutableBufferPointer(rebasing: copy[0..<source.count])
        return column!
    }

    /// Sets bit `row`, allocating the bitset on first use; true when it was not set before.
    @discardableResult
    private func setBit(_ bits: inout UnsafeMutableBufferPointer<UInt64>?, _ row: Int, words: Int) -> Bool {
        if bits == nil {
            let fresh = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: max(words, 1))
            fresh.initialize(repeating: 0)
            bits = fresh
        }
        let mask: UInt64 = 1 << UInt64(row & 63)
        defer { bits![row >> 6] |= mask }
        return bits![row >> 6] & mask == 0
    }
}

/// A live change resolved against one snapshot's rows and dictionaries.
enum ResolvedChange: Equatable {
    case removeItem(Int)
    case deleteUser(Int)
    case stock(Int, Bool)
    case price(Int, Int64)
    case tag(Int, bit: Int, add: Bool)
}

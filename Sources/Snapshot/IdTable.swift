import MappedStorage

/// An on-disk string ↔ row table, read in place: external ids (`"sku-123"`) to rows through an
/// open-addressing hash table, and rows back to ids through an offset array into a UTF-8 heap.
/// Also used for the category, brand and tag dictionaries (names ↔ ids).
///
/// Layout (file kind `idTable`; parameters: count, bucket count, hash seed, heap bytes):
/// - section 0, buckets: `bucketCount` (a power of two ≥ 2·count) × 16 bytes: `row` u32 (0xFFFF_FFFF =
///   empty), `tag` u32 (the high 32 bits of the hash), then a u64 locating the id in the heap: low 40
///   bits byte offset, high 24 bits length — so a hit reads the bucket and the heap, not the offsets.
///   Slot = `xxh64(utf8, seed) & (bucketCount − 1)`,
///   linear probing.
/// - section 1, offsets: `count + 1` u64, ascending; id of row r = heap[offsets[r] ..< offsets[r+1]].
/// - section 2, heap: the UTF-8 bytes of all ids in row order.
///
/// Open validates only the header and section sizes (O(1), touches no table pages); every lookup
/// bounds-checks what it reads, so a corrupt table yields `nil`, never an out-of-bounds read. Full
/// consistency (every id found at its own row) is checked by `Snapshot.verifyStructure()`.
///
/// Thread safety: immutable; lookups are safe from any thread. Valid while its snapshot is alive.
public struct IdTable: @unchecked Sendable {
    static let emptyRow: UInt32 = .max
    /// Number of ids (rows).
    public let count: Int
    private let buckets: Column<UInt64>
    private let offsets: Column<UInt64>
    private let heap: UnsafeRawBufferPointer
    private let seed: UInt64
    private let mask: Int

    init(_ file: SectionFile) throws(SnapshotError) {
        count = try file.parameter(0, "id count", max: Int(UInt32.max - 1))
        let bucketCount = try file.parameter(1, "bucket count", max: 1 << 40)
        guard bucketCount > count, bucketCount & (bucketCount - 1) == 0 else {
            throw .corrupt(
                file: file.name, offset: 40, reason: "bucket count \(bucketCount) is not a power of two > \(count)")
        }
        seed = file.parameters[2]
        let heapBytes = try file.parameter(3, "heap size", max: 1 << 48)
        try file.expectSection(0, bytes: bucketCount * 16, "bucket")
        try file.expectSection(1, bytes: (count + 1) * 8, "offset")
        try file.expectSection(2, bytes: heapBytes, "heap")
        let rows = count
        buckets = try mappingErrors { try file.section(0).column(UInt64.self, offset: 0, count: 2 * bucketCount) }
        offsets = try mappingErrors { try file.section(1).column(UInt64.self, offset: 0, count: rows + 1) }
        heap = file.section(2).bytes
        mask = bucketCount - 1
    }

    /// The UTF-8 bytes of the id at `row`, in place, or nil if `row` is out of range or the offsets are corrupt.
    public func idBytes(at row: Int) -> UnsafeRawBufferPointer? {
        guard row >= 0, row < count else { return nil }
        let start = offsets[row]
        let end = offsets[row + 1]
        guard start <= end, end <= UInt64(heap.count) else { return nil }
        return UnsafeRawBufferPointer(rebasing: heap[Int(start)..<Int(end)])
    }

    /// The id string at `row`, or nil if `row` is out of range (or the table is corrupt). O(length).
    public func id(at row: Int) -> String? {
        idBytes(at: row).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The row of `id`, or nil if absent. O(1) expected: one hash, usually one or two probes, one
    /// byte comparison; no allocation for native strings.
    public func row(for id: String) -> Int? {
        var id = id
        return id.withUTF8 { row(forUTF8: UnsafeRawBufferPointer($0)) }
    }

    /// The row of the id whose UTF-8 bytes are `key`, or nil if absent.
    public func row(forUTF8 key: UnsafeRawBufferPointer) -> Int? {
        let hash = XXHash64.hash(key, seed: seed)
        let tag = UInt32(truncatingIfNeeded: hash >> 32)
        var slot = Int(truncatingIfNeeded: hash) & mask
        // Bounded probing: a corrupt table with no empty bucket must not loop forever.
        for _ in 0...mask {
            let entry = buckets[2 * slot]
            let row = UInt32(truncatingIfNeeded: entry)
            if row == Self.emptyRow { return nil }
            if UInt32(truncatingIfNeeded: entry >> 32) == tag, Int(row) < count,
                let bytes = heapBytes(buckets[2 * slot + 1]), bytes.elementsEqual(key)
            {
                return Int(row)
            }
            slot = (slot + 1) & mask
        }
        return nil
    }

    /// The heap bytes a bucket's location word points at, or nil if they lie outside the heap.
    private func heapBytes(_ location: UInt64) -> UnsafeRawBufferPointer? {
        let start = Int(location & Self.offsetMask)
        let length = Int(location >> Self.lengthShift)
        guard start <= heap.count, length <= heap.count - start else { return nil }
        return UnsafeRawBufferPointer(rebasing: heap[start..<(start + length)])
    }

    static let lengthShift: UInt64 = 40
    static let offsetMask: UInt64 = (1 << 40) - 1
    /// Longest id the bucket's 24-bit length field can hold.
    static let maximumIdBytes = (1 << 24) - 1

    /// Checks every row's offsets and that every id resolves to its own row. O(count).
    func verify(name: String) throws(SnapshotError) {
        guard offsets[0] == 0, offsets[count] == UInt64(heap.count) else {
            throw .corrupt(file: name, offset: 0, reason: "id offsets do not span the heap")
        }
        var occupied = 0
        for slot in 0...mask {
            let row = UInt32(truncatingIfNeeded: buckets[2 * slot])
            guard row != Self.emptyRow else { continue }
            occupied += 1
            guard Int(row) < count,
                buckets[2 * slot + 1] == offsets[Int(row)] | (offsets[Int(row) + 1] &- offsets[Int(row)])
                    << Self.lengthShift
            else {
                throw .corrupt(file: name, offset: 0, reason: "bucket \(slot) does not locate row \(row)'s id")
            }
        }
        guard occupied == count else {
            throw .corrupt(file: name, offset: 0, reason: "hash table holds \(occupied) entries for \(count) ids")
        }
        for row in 0..<count {
            guard let bytes = idBytes(at: row) else {
                throw .corrupt(file: name, offset: 0, reason: "row \(row): id offsets out of order or past the heap")
            }
            guard self.row(forUTF8: bytes) == row else {
                throw .corrupt(file: name, offset: 0, reason: "row \(row): id does not resolve to its own row")
            }
        }
    }
}

/// Builds an `IdTable` file from ids in row order. Memory: the ids' bytes, 8 bytes per row and
/// 16 bytes per bucket; duplicates are found while hashing, so no per-id dictionary is kept.
struct IdTableWriter {
    static let seed: UInt64 = 0x7261_6E6B_6462_0001  // fixed so tables are reproducible

    /// The input file, for error messages.
    let sourceFile: String
    private(set) var heap: [UInt8] = []
    private(set) var offsets: [UInt64] = [0]
    /// Input line of each row, when lines and rows differ (blank lines skipped); else row + 1.
    private var lines: [UInt32]? = nil

    init(sourceFile: String) {
        self.sourceFile = sourceFile
    }

    var count: Int { offsets.count - 1 }

    /// Appends `id` as the next row, read from input line `line`.
    mutating func append(_ id: String, line: Int) {
        if lines == nil, line != count + 1 { lines = (0..<count).map { UInt32($0 + 1) } }
        lines?.append(UInt32(clamping: line))
        heap.append(contentsOf: id.utf8)
        offsets.append(UInt64(heap.count))
    }

    private func line(of row: Int) -> Int { lines.map { Int($0[row]) } ?? row + 1 }

    /// Writes the table, failing with `.duplicateId` if two rows share an id.
    func write(to path: String) throws(SnapshotError) {
        var bucketCount = 2
        while bucketCount < 2 * count { bucketCount <<= 1 }
        for row in 0..<count where offsets[row + 1] - offsets[row] > UInt64(IdTable.maximumIdBytes) {
            throw .invalidField(
                file: sourceFile, line: line(of: row), field: "id",
                reason: "longer than \(IdTable.maximumIdBytes) bytes")
        }
        var buckets = [UInt64](repeating: UInt64(IdTable.emptyRow), count: 2 * bucketCount)
        let mask = bucketCount - 1
        let duplicate: (first: Int, second: Int)? = heap.withUnsafeBytes { heapBytes in
            func key(_ row: Int) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(rebasing: heapBytes[Int(offsets[row])..<Int(offsets[row + 1])])
            }
            for row in 0..<count {
                let hash = XXHash64.hash(key(row), seed: Self.seed)
                var slot = Int(truncatingIfNeeded: hash) & mask
                while true {
                    let entry = buckets[2 * slot]
                    let other = UInt32(truncatingIfNeeded: entry)
                    if other == IdTable.emptyRow { break }
                    if entry >> 32 == hash >> 32, key(Int(other)).elementsEqual(key(row)) { return (Int(other), row) }
                    slot = (slot + 1) & mask
                }
                buckets[2 * slot] = (hash >> 32) << 32 | UInt64(row)
                buckets[2 * slot + 1] = offsets[row] | (offsets[row + 1] - offsets[row]) << IdTable.lengthShift
            }
            return nil
        }
        if let duplicate {
            let id = heap.withUnsafeBytes {
                String(decoding: $0[Int(offsets[duplicate.second])..<Int(offsets[duplicate.second + 1])], as: UTF8.self)
            }
            throw .duplicateId(
                file: sourceFile, line: line(of: duplicate.second), id: id, firstLine: line(of: duplicate.first))
        }
        try mappingErrors {
            let out = try SectionFileWriter(
                path: path, kind: .idTable,
                parameters: [UInt64(count), UInt64(bucketCount), Self.seed, UInt64(heap.count)],
                sectionLengths: [bucketCount * 16, offsets.count * 8, heap.count])
            try out.beginSection()
            try out.writer.write(contentsOf: buckets)
            try out.beginSection()
            try out.writer.write(contentsOf: offsets)
            try out.beginSection()
            try out.writer.write(heap)
            try out.finish()
        }
    }
}

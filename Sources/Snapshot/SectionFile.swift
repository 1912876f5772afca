import MappedStorage

/// The container every binary snapshot file uses (byte layout in docs/SNAPSHOT_FORMAT.md):
///
/// ```
/// offset  size  field
///      0     8  magic "RNKDSNAP"
///      8     4  format version (u32) = 2
///     12     4  file kind (u32, `SnapshotFileKind`)
///     16     4  section count (u32)
///     20     4  flags (u32) = 0
///     24     8  file size in bytes (u64)
///     32    32  four kind-specific parameters (u64 each)
///     64  16×n  section table: (offset u64, length u64) per section, then zero padding to 64
/// ```
/// Sections follow in table order, each starting on a 64-byte boundary; the file ends at the last
/// section's end rounded up to 64. All integers little-endian.
enum SectionFileFormat {
    static let magic: [UInt8] = Array("RNKDSNAP".utf8)
    static let version: UInt32 = 2
    static let headerSize = 64
    static let alignment = 64

    static func roundUp(_ value: Int) -> Int { (value + alignment - 1) / alignment * alignment }

    static func tableEnd(sectionCount: Int) -> Int { roundUp(headerSize + 16 * sectionCount) }
}

/// What a binary snapshot file holds; stored in its header so a file cannot be mistaken for another.
public enum SnapshotFileKind: UInt32, Sendable, CaseIterable {
    case vectors = 1
    case idTable = 2
    case attributes = 3
    case popularity = 4
    case graph = 5
    case filterIndex = 6
    case partitions = 7
    case walkVectors = 8

    var sectionCount: Int {
        switch self {
        case .vectors, .graph, .walkVectors: 1
        case .idTable: 3
        case .attributes: 7
        case .popularity: 4
        case .filterIndex: 6
        case .partitions: 4
        }
    }

    /// How many of the four header parameters the kind uses; the rest must be zero.
    var parameterCount: Int {
        switch self {
        case .vectors, .idTable, .attributes: 4
        case .popularity, .filterIndex, .partitions: 3
        case .walkVectors: 2
        case .graph: 1
        }
    }
}

/// A validated view of one mapped section file. `init` checks the magic, version, kind, the file size
/// recorded in the header against the real size, and that every section is aligned, ordered,
/// non-overlapping and inside the file — before anything else reads through the mapping.
struct SectionFile: @unchecked Sendable {
    let file: MappedFile
    let name: String
    let parameters: [UInt64]
    private let sections: [ByteView]

    init(file: MappedFile, name: String, kind: SnapshotFileKind) throws(SnapshotError) {
        self.file = file
        self.name = name
        let view = ByteView(bytes: file.bytes, name: name)
        func corrupt(_ offset: Int, _ reason: String) -> SnapshotError {
            .corrupt(file: name, offset: offset, reason: reason)
        }
        guard view.count >= SectionFileFormat.headerSize else {
            throw corrupt(0, "file is \(view.count) bytes, shorter than the 64-byte header")
        }
        guard Array(file.bytes[0..<8]) == SectionFileFormat.magic else {
            throw corrupt(0, "bad magic (not a snapshot file)")
        }
        do {
            let version = try view.load(UInt32.self, at: 8)
            guard version == SectionFileFormat.version else {
                throw corrupt(
                    8, "unsupported format version \(version) (this build reads \(SectionFileFormat.version))")
            }
            let storedKind = try view.load(UInt32.self, at: 12)
            guard storedKind == kind.rawValue else {
                throw corrupt(12, "file kind \(storedKind), expected \(kind.rawValue)")
            }
            let count = try view.load(UInt32.self, at: 16)
            guard count == kind.sectionCount else {
                throw corrupt(16, "section count \(count), expected \(kind.sectionCount)")
            }
            let flags = try view.load(UInt32.self, at: 20)
            guard flags == 0 else { throw corrupt(20, "unknown flags \(flags)") }
            let size = try view.load(UInt64.self, at: 24)
            guard size == UInt64(view.count) else {
                throw corrupt(24, "header says \(size) bytes, file has \(view.count)")
            }
            parameters = try (0..<4).map { (i) throws(MappedStorageError) in try view.load(UInt64.self, at: 32 + 8 * i)
            }
            for index in kind.parameterCount..<4 where parameters[index] != 0 {
                throw corrupt(32 + 8 * index, "unused header parameter \(index) is not zero")
            }
            var previousEnd = SectionFileFormat.tableEnd(sectionCount: kind.sectionCount)
            guard previousEnd <= view.count else { throw corrupt(64, "section table runs past the end of the file") }
            // The padding after the table is part of the header: it must be zero, so no header byte
            // can change without open noticing.
            for offset in (64 + 16 * kind.sectionCount)..<previousEnd where file.bytes[offset] != 0 {
                throw corrupt(offset, "non-zero padding after the section table")
            }
            var sections: [ByteView] = []
            for index in 0..<kind.sectionCount {
                let entry = 64 + 16 * index
                let offset = try view.load(UInt64.self, at: entry)
                let length = try view.load(UInt64.self, at: entry + 8)
                // Layout is canonical: each section starts at the first 64-byte boundary after the
                // previous one, so any change to an offset is detected here.
                let expectedOffset = SectionFileFormat.roundUp(previousEnd)
                guard offset == UInt64(expectedOffset) else {
                    throw corrupt(entry, "section \(index) offset \(offset), expected \(expectedOffset)")
                }
                guard length <= UInt64(view.count), offset <= UInt64(view.count) - length else {
                    throw corrupt(
                        entry, "section \(index) (\(length) bytes at \(offset)) runs past the end of the file")
                }
                sections.append(try view.slice(offset: Int(offset), count: Int(length)))
                previousEnd = Int(offset + length)
            }
            guard SectionFileFormat.roundUp(previousEnd) == view.count else {
                throw corrupt(24, "file is \(view.count) bytes, sections end at \(previousEnd)")
            }
            self.sections = sections
        } catch let error as SnapshotError {
            throw error
        } catch let error as MappedStorageError {
            throw .io(error)
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    func section(_ index: Int) -> ByteView { sections[index] }

    /// Parameter `index` as an `Int`, rejecting values that do not fit.
    func parameter(_ index: Int, _ field: String, max: Int = Int(Int32.max)) throws(SnapshotError) -> Int {
        let value = parameters[index]
        guard value <= UInt64(max) else {
            throw .corrupt(file: name, offset: 32 + 8 * index, reason: "\(field) \(value) exceeds \(max)")
        }
        return Int(value)
    }

    /// Throws unless section `index` is exactly `expected` bytes (`nil` when the expected size overflowed).
    func expectSection(_ index: Int, bytes expected: Int?, _ what: String) throws(SnapshotError) {
        let actual = sections[index].count
        guard let expected, actual == expected else {
            throw .corrupt(
                file: name, offset: 64 + 16 * index + 8,
                reason:
                    "\(what) section is \(actual) bytes, expected \(expected.map(String.init) ?? "an overflowing size")"
            )
        }
    }
}

/// Multiplies sizes from a file header, returning nil on overflow (so a lying count cannot wrap).
func checkedProduct(_ a: Int, _ b: Int) -> Int? {
    let (product, overflow) = a.multipliedReportingOverflow(by: b)
    return overflow ? nil : product
}

/// Writes one section file: header and table first (section lengths are known up front), then each
/// section's bytes in order through `writeSection`. `finish` checks every section got its length.
final class SectionFileWriter {
    let writer: FileWriter
    private let offsets: [Int]
    private let lengths: [Int]
    private var next = 0

    init(path: String, kind: SnapshotFileKind, parameters: [UInt64], sectionLengths: [Int]) throws(MappedStorageError) {
        precondition(sectionLengths.count == kind.sectionCount && parameters.count <= 4)
        var offsets: [Int] = []
        var cursor = SectionFileFormat.tableEnd(sectionCount: sectionLengths.count)
        for length in sectionLengths {
            offsets.append(cursor)
            cursor = SectionFileFormat.roundUp(cursor + length)
        }
        self.offsets = offsets
        self.lengths = sectionLengths
        writer = try FileWriter(path: path)
        try writer.write(SectionFileFormat.magic)
        try writer.write(integer: SectionFileFormat.version)
        try writer.write(integer: kind.rawValue)
        try writer.write(integer: UInt32(sectionLengths.count))
        try writer.write(integer: UInt32(0))
        try writer.write(integer: UInt64(cursor))
        for index in 0..<4 { try writer.write(integer: index < parameters.count ? parameters[index] : 0) }
        for (offset, length) in zip(offsets, sectionLengths) {
            try writer.write(integer: UInt64(offset))
            try writer.write(integer: UInt64(length))
        }
    }

    /// Pads to the start of the next section; the caller then writes exactly its length.
    func beginSection() throws(MappedStorageError) {
        if next > 0 { precondition(writer.offset == offsets[next - 1] + lengths[next - 1], "section length mismatch") }
        try writer.pad(toMultipleOf: SectionFileFormat.alignment)
        precondition(writer.offset == offsets[next])
        next += 1
    }

    func finish() throws(MappedStorageError) {
        precondition(
            next == offsets.count && writer.offset == offsets[next - 1] + lengths[next - 1], "section length mismatch")
        try writer.pad(toMultipleOf: SectionFileFormat.alignment)
        try writer.finish()
    }
}

import MappedStorage

/// The header of a NumPy `.npy` file (format spec: numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
/// magic `\x93NUMPY`, major/minor version, a little-endian header length (u16 in v1, u32 in v2/v3), then
/// an ASCII Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (rows, dim), }`
/// padded with spaces and a newline, then the raw array data.
///
/// rankd accepts C-order, 2-D, little-endian `<f4` (stored as is) or `<f8` (narrowed to Float32).
struct NPYHeader: Equatable {
    enum DType: String { case f32 = "<f4", f64 = "<f8" }

    var dtype: DType
    var rows: Int
    var columns: Int
    /// Offset of the first data byte.
    var dataOffset: Int

    var itemSize: Int { dtype == .f32 ? 4 : 8 }

    /// Reads and validates the header of `reader`'s file, including that the data length is exactly
    /// `rows × columns × itemSize` (so a header lying about its length or shape is caught up front).
    static func read(from reader: FileReader, name: String) throws(SnapshotError) -> NPYHeader {
        func fail(_ reason: String) -> SnapshotError { .npy(file: name, reason: reason) }
        var prefix = [UInt8](repeating: 0, count: 12)
        let got = try mappingErrors { try prefix.withUnsafeMutableBytes { try reader.read(into: $0) } }
        guard got >= 10, prefix[0..<6] == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] else {
            throw fail("not a .npy file (bad magic)")
        }
        let major = prefix[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(prefix[8]) | Int(prefix[9]) << 8
            headerStart = 10
        case 2, 3:
            guard got >= 12 else { throw fail("truncated header") }
            headerLength = Int(prefix[8]) | Int(prefix[9]) << 8 | Int(prefix[10]) << 16 | Int(prefix[11]) << 24
            headerStart = 12
        default:
            throw fail("unsupported .npy format version \(major)")
        }
        guard headerStart + headerLength <= reader.size else {
            throw fail(
                "header claims \(headerLength) bytes but the file has only \(reader.size - headerStart) after the prefix"
            )
        }
        var headerBytes = [UInt8](repeating: 0, count: headerLength)
        let already = Array(prefix[headerStart..<got])
        headerBytes.replaceSubrange(0..<min(already.count, headerLength), with: already.prefix(headerLength))
        if headerLength > already.count {
            try mappingErrors {
                try headerBytes.withUnsafeMutableBytes {
                    try reader.readExactly(into: UnsafeMutableRawBufferPointer(rebasing: $0[already.count...]))
                }
            }
        }
        guard let text = String(validating: headerBytes, as: UTF8.self) else { throw fail("header is not text") }
        let fields = try parseDict(text, fail: fail)
        guard let descr = fields["descr"] else { throw fail("header has no 'descr'") }
        guard let dtype = DType(rawValue: descr) else {
            throw fail("dtype \(descr) not supported (expected little-endian float32 '<f4' or float64 '<f8')")
        }
        guard let order = fields["fortran_order"] else { throw fail("header has no 'fortran_order'") }
        guard order == "False" else { throw fail("Fortran-order arrays are not supported; save with C order") }
        guard let shapeText = fields["shape"] else { throw fail("header has no 'shape'") }
        let dims = shapeText.split(separator: ",").map { $0.trimmingSpaces }.filter { !$0.isEmpty }
        guard dims.count == 2, let rows = Int(dims[0]), let columns = Int(dims[1]), rows >= 0, columns > 0 else {
            throw fail("shape (\(shapeText)) is not 2-D (rows, dimension)")
        }
        var header = NPYHeader(dtype: dtype, rows: rows, columns: columns, dataOffset: headerStart + headerLength)
        guard let expected = checkedProduct(rows, columns).flatMap({ checkedProduct($0, header.itemSize) }),
            reader.size - header.dataOffset == expected
        else {
            throw fail(
                "shape (\(rows), \(columns)) needs \(rows)×\(columns)×\(header.itemSize) data bytes, "
                    + "file has \(reader.size - header.dataOffset)")
        }
        header.dataOffset = headerStart + headerLength
        return header
    }

    /// Parses the tiny dict literal numpy writes: quoted keys, values that are a quoted string, a
    /// bare word, or a parenthesised tuple (returned without the parentheses).
    private static func parseDict(
        _ text: String, fail: (String) -> SnapshotError
    ) throws(SnapshotError) -> [String: String] {
        var chars = Substring(text.trimmingSpaces)
        guard chars.first == "{", let close = chars.lastIndex(of: "}") else { throw fail("header is not a dict") }
        chars = chars[chars.index(after: chars.startIndex)..<close]
        var fields: [String: String] = [:]
        while true {
            chars = chars.drop { $0 == " " || $0 == "," || $0 == "\n" }
            guard let quote = chars.first else { break }
            guard quote == "'" || quote == "\"" else { throw fail("malformed header near \(String(chars.prefix(20)))") }
            let afterQuote = chars.dropFirst()
            guard let keyEnd = afterQuote.firstIndex(of: quote) else { throw fail("unterminated key in header") }
            let key = String(afterQuote[..<keyEnd])
            var rest = afterQuote[afterQuote.index(after: keyEnd)...].drop { $0 == " " }
            guard rest.first == ":" else { throw fail("missing ':' after '\(key)' in header") }
            rest = rest.dropFirst().drop { $0 == " " }
            let value: Substring
            if let first = rest.first, first == "'" || first == "\"" {
                let body = rest.dropFirst()
                guard let end = body.firstIndex(of: first) else { throw fail("unterminated value for '\(key)'") }
                value = body[..<end]
                rest = body[body.index(after: end)...]
            } else if rest.first == "(" {
                guard let end = rest.firstIndex(of: ")") else { throw fail("unterminated tuple for '\(key)'") }
                value = rest[rest.index(after: rest.startIndex)..<end]
                rest = rest[rest.index(after: end)...]
            } else {
                let end = rest.firstIndex(where: { $0 == "," || $0 == " " }) ?? rest.endIndex
                value = rest[..<end]
                rest = rest[end...]
            }
            fields[key] = String(value)
            chars = rest
        }
        return fields
    }

    /// The header bytes for a C-order `<f4` array of `rows × columns` (v1, padded so data starts on a
    /// 64-byte boundary).
    static func encodeFloat32Header(rows: Int, columns: Int) -> [UInt8] {
        var dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
        let total = (10 + dict.utf8.count + 1 + 63) / 64 * 64
        dict += String(repeating: " ", count: total - 10 - dict.utf8.count - 1) + "\n"
        let length = dict.utf8.count
        return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(dict.utf8)
    }
}

/// Streams the rows of a validated `.npy` file as Float32, a block at a time, rejecting NaN/Inf
/// with the row and column.
struct NPYRowReader {
    let header: NPYHeader
    let name: String
    private let reader: FileReader
    private var raw: [UInt8]
    private(set) var nextRow = 0

    static let blockBytes = 4 << 20

    init(path: String, name: String) throws(SnapshotError) {
        reader = try mappingErrors { try FileReader(path: path) }
        self.name = name
        header = try NPYHeader.read(from: reader, name: name)
        raw = []
    }

    /// Reads the next block of rows into `floats` (resized to rows × columns); returns the row count
    /// (0 at the end).
    mutating func nextBlock(into floats: inout [Float]) throws(SnapshotError) -> Int {
        let rowBytes = header.columns * header.itemSize
        let rows = min(header.rows - nextRow, max(1, Self.blockBytes / rowBytes))
        guard rows > 0 else { return 0 }
        raw = [UInt8](repeating: 0, count: rows * rowBytes)
        try mappingErrors { try raw.withUnsafeMutableBytes { try reader.readExactly(into: $0) } }
        let count = rows * header.columns
        if floats.count != count { floats = [Float](repeating: 0, count: count) }
        raw.withUnsafeBytes { bytes in
            floats.withUnsafeMutableBufferPointer { out in
                switch header.dtype {
                case .f32:
                    for i in 0..<count {
                        out[i] = Float(
                            bitPattern: UInt32(
                                littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                    }
                case .f64:
                    for i in 0..<count {
                        out[i] = Float(
                            Double(
                                bitPattern: UInt64(
                                    littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                    }
                }
            }
        }
        if let bad = floats.firstIndex(where: { !$0.isFinite }) {
            throw .nonFiniteValue(file: name, row: nextRow + bad / header.columns, column: bad % header.columns)
        }
        nextRow += rows
        return rows
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        String(drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }
}

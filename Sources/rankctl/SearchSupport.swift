import ArgumentParser
import Foundation

/// A NumPy `.npy` array read whole into memory (little-endian `<f4`, `<f8`, `<i4`, `<i8`; C order), and an int64
/// writer — just what `rankctl search` needs for benchmark inputs and outputs.
struct NPYArray {
    let descr: String
    let shape: [Int]
    let data: Data

    init(path: String) throws {
        func fail(_ reason: String) -> any Error { ValidationError("\(path): \(reason)") }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw fail(FileManager.default.fileExists(atPath: path) ? "not readable" : "no such file")
        }
        let file = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        guard file.count >= 10, file.prefix(6) == Data([0x93] + Array("NUMPY".utf8)) else {
            throw fail("not a .npy file")
        }
        let major = file[file.startIndex + 6]
        let headerLength: Int
        let headerStart: Int
        if major == 1 {
            headerLength = Int(file[8]) | Int(file[9]) << 8
            headerStart = 10
        } else {
            guard file.count >= 12 else { throw fail("truncated header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(file[8 + $1]) << (8 * $1) }
            headerStart = 12
        }
        guard headerStart + headerLength <= file.count,
            let header = String(data: file[headerStart..<(headerStart + headerLength)], encoding: .ascii)
        else { throw fail("truncated header") }
        func value(_ key: String) -> Substring? {
            guard let range = header.range(of: "'\(key)':") else { return nil }
            return header[range.upperBound...].drop { $0 == " " }
        }
        guard let descrField = value("descr"), let quote = descrField.dropFirst().firstIndex(of: "'") else {
            throw fail("no descr")
        }
        descr = String(descrField[descrField.index(after: descrField.startIndex)..<quote])
        guard value("fortran_order")?.hasPrefix("False") == true else { throw fail("must be C order") }
        guard let shapeField = value("shape"), let close = shapeField.firstIndex(of: ")") else {
            throw fail("no shape")
        }
        shape = shapeField.dropFirst()[..<close].split(separator: ",").compactMap {
            Int($0.trimmingCharacters(in: .whitespaces))
        }
        let elementSize = ["<f4": 4, "<i4": 4, "<f8": 8, "<i8": 8][descr]
        guard let elementSize else { throw fail("unsupported dtype \(descr)") }
        let count = shape.reduce(1, *)
        let start = headerStart + headerLength
        guard file.count - start >= count * elementSize else { throw fail("data truncated") }
        data = file[start..<(start + count * elementSize)]
    }

    /// The elements as Float32 (from `<f4` or `<f8`).
    func floats(name: String) throws -> [Float] {
        switch descr {
        case "<f4": return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        case "<f8": return data.withUnsafeBytes { $0.bindMemory(to: Double.self).map { Float($0) } }
        default: throw ValidationError("\(name): expected float32 or float64, got \(descr)")
        }
    }

    /// The elements as Int64 (from `<i4` or `<i8`).
    func integers(name: String) throws -> [Int64] {
        switch descr {
        case "<i8": return data.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
        case "<i4": return data.withUnsafeBytes { $0.bindMemory(to: Int32.self).map { Int64($0) } }
        default: throw ValidationError("\(name): expected int32 or int64, got \(descr)")
        }
    }

    /// Writes `values` as a version-1 `<i8` array of `shape`.
    static func writeInt64(_ values: [Int64], shape: [Int], to path: String) throws {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<i8', 'fortran_order': False, 'shape': \(shapeText), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var file = Data(
            [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        file.append(Data(header.utf8))
        values.withUnsafeBytes { file.append(contentsOf: $0) }
        try file.write(to: URL(fileURLWithPath: path))
    }
}

/// Reads the allocation counter of the `scripts/alloc-count.c` malloc shim when it is preloaded
/// (`LD_PRELOAD=…/alloc-count.so`); nil otherwise.
enum AllocationCounter {
    private typealias Counter = @convention(c) () -> UInt64

    static func current() -> Int? {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "rankd_alloc_count") else { return nil }
        return Int(unsafeBitCast(symbol, to: Counter.self)())
    }
}

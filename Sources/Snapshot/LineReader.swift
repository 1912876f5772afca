import MappedStorage

/// Streams a text file line by line (`\n`, with a trailing `\r` dropped) through a 1 MiB buffer, so
/// inputs of any size are read with bounded memory. Lines are numbered from 1.
struct LineReader {
    private let reader: FileReader
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false
    private(set) var lineNumber = 0

    init(path: String) throws(SnapshotError) {
        reader = try mappingErrors { try FileReader(path: path) }
    }

    /// Calls `body` with each line's bytes and number. `body` may throw to stop.
    mutating func forEachLine(_ body: (ArraySlice<UInt8>, Int) throws(SnapshotError) -> Void) throws(SnapshotError) {
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            if let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
                lineNumber += 1
                var end = newline
                if end > start, buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                try body(buffer[start..<end], lineNumber)
                start = newline + 1
                continue
            }
            if atEnd {
                if start < buffer.count {
                    lineNumber += 1
                    var end = buffer.count
                    if buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                    try body(buffer[start..<end], lineNumber)
                }
                return
            }
            buffer.removeFirst(start)
            start = 0
            let n = try mappingErrors { try chunk.withUnsafeMutableBytes { try reader.read(into: $0) } }
            if n == 0 { atEnd = true } else { buffer.append(contentsOf: chunk[0..<n]) }
        }
    }
}

public import MappedStorage

/// Everything that can be wrong with snapshot inputs or a snapshot on disk. Every case names the file
/// and, where it applies, the row, line, field or byte offset, so one line tells an operator what to fix.
public enum SnapshotError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A file could not be opened, mapped, read or written, or a view fell outside a file.
    case io(MappedStorageError)
    /// An `.npy` file is malformed or not what rankd accepts (dtype, order, shape, header length).
    case npy(file: String, reason: String)
    /// A vector element is NaN or infinite.
    case nonFiniteValue(file: String, row: Int, column: Int)
    /// Users and items have different dimensions.
    case dimensionMismatch(users: Int, items: Int)
    /// Two inputs that must agree on a row count do not (ids vs vectors, metadata lines vs vectors).
    case countMismatch(file: String, count: Int, otherFile: String, otherCount: Int)
    /// The same external id appears twice.
    case duplicateId(file: String, line: Int, id: String, firstLine: Int)
    /// An id is empty.
    case emptyId(file: String, line: Int)
    /// A line is not valid UTF-8.
    case invalidUTF8(file: String, line: Int)
    /// A JSON line does not parse.
    case malformedJSON(file: String, line: Int, reason: String)
    /// A JSON field has the wrong type or an out-of-range value.
    case invalidField(file: String, line: Int, field: String, reason: String)
    /// More distinct tags than the 64-bit tag bitset can hold.
    case tooManyTags(file: String, line: Int, tag: String)
    /// The build output path already exists.
    case outputExists(path: String)
    /// A build option is invalid.
    case invalidArgument(name: String, reason: String)
    /// `manifest.json` is missing fields, inconsistent or of an unsupported format version.
    case manifest(file: String, reason: String)
    /// A binary file's header, section table or contents are inconsistent with its size or the manifest.
    case corrupt(file: String, offset: Int, reason: String)
    /// A file's checksum does not match the manifest.
    case checksumMismatch(file: String, expected: String, actual: String)
    /// The ANN graph is invalid for its vectors.
    case graph(file: String, reason: String)

    public var description: String {
        switch self {
        case .io(let error): error.description
        case .npy(let file, let reason): "\(file): \(reason)"
        case .nonFiniteValue(let file, let row, let column): "\(file): row \(row) column \(column) is NaN or infinite"
        case .dimensionMismatch(let users, let items):
            "dimension mismatch: user vectors have \(users) dimensions, item vectors have \(items)"
        case .countMismatch(let file, let count, let otherFile, let otherCount):
            "\(file) has \(count) rows but \(otherFile) has \(otherCount)"
        case .duplicateId(let file, let line, let id, let firstLine):
            "\(file):\(line): duplicate id \"\(id)\" (first seen on line \(firstLine))"
        case .emptyId(let file, let line): "\(file):\(line): empty id"
        case .invalidUTF8(let file, let line): "\(file):\(line): not valid UTF-8"
        case .malformedJSON(let file, let line, let reason): "\(file):\(line): malformed JSON: \(reason)"
        case .invalidField(let file, let line, let field, let reason): "\(file):\(line): field \"\(field)\": \(reason)"
        case .tooManyTags(let file, let line, let tag):
            "\(file):\(line): tag \"\(tag)\" would be distinct tag number 65; at most 64 distinct tags are supported"
        case .outputExists(let path): "\(path): already exists; refusing to overwrite"
        case .invalidArgument(let name, let reason): "invalid \(name): \(reason)"
        case .manifest(let file, let reason): "\(file): \(reason)"
        case .corrupt(let file, let offset, let reason): "\(file): offset \(offset): \(reason)"
        case .checksumMismatch(let file, let expected, let actual):
            "\(file): checksum mismatch: manifest says xxh64 \(expected), file has \(actual)"
        case .graph(let file, let reason): "\(file): \(reason)"
        }
    }
}

/// Runs `body`, turning any error it throws into a `SnapshotError` (storage errors are wrapped,
/// anything unexpected becomes `.invalidArgument` with its description so nothing escapes untyped).
func mappingErrors<T>(_ body: () throws -> T) throws(SnapshotError) -> T {
    do {
        return try body()
    } catch let error as SnapshotError {
        throw error
    } catch let error as MappedStorageError {
        throw .io(error)
    } catch {
        throw .invalidArgument(name: "operation", reason: String(describing: error))
    }
}

/// The fuzz targets of rankd: each takes arbitrary bytes and feeds them to one parser of untrusted
/// input the way the server or `rankctl build` would. A target traps (the fuzzer's "crash") only on
/// a bug: a memory error, a Swift runtime trap, or a broken invariant that the target checks
/// itself (`fuzzCheck`). Rejecting the input with an error is the expected outcome for most bytes.
///
/// The same functions run under libFuzzer (`Fuzz/`, `make fuzz`) and in the test suite, which
/// replays the committed corpora (`Fuzz/Corpus/<target>/`) and the seeds below.
///
/// Thread safety: a target may be run from one thread at a time (libFuzzer and the tests do so);
/// the shared fixture is built once.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// `ranking.v1.RankRequest` bytes → decode → the engine (validation and the whole pipeline) on
    /// a small snapshot; decoding is also checked to be stable under re-encoding.
    case rankRequest = "rank-request"
    /// A sequence of admin messages (`PublishRequest` header then chunks, or Activate/Rollback/
    /// Status requests) → decode → a snapshot store's publish path (names, offsets, sizes, commit).
    case adminRequest = "admin-request"
    /// Bytes in arbitrary splits → the gRPC length-prefixed message deframer.
    case deframer = "deframer"
    /// Raw client bytes after the HTTP/2 preface → the server connection (nghttp2 session, HPACK,
    /// streams, gRPC framing, Rank and Echo handlers), with no socket.
    case serverConnection = "server-connection"
    /// One file of a valid snapshot replaced by the input (its manifest entry's size and checksum
    /// fixed up so the structural checks run) → open, verify, load, rank.
    case snapshot = "snapshot"
    /// Bytes → the ranking-config JSON decoder (manifest `ranking`, `--ranking-config`).
    case rankingConfig = "ranking-config"
    /// One `rankctl build` embeddings input (`users.npy` or `items.npy`) replaced by the input →
    /// the snapshot builder.
    case buildNPY = "build-npy"
    /// One `rankctl build` text input (`items.jsonl` or the user-id list) replaced by the input →
    /// the snapshot builder.
    case buildJSONL = "build-jsonl"

    /// Runs the target on `bytes`.
    public func run(_ bytes: UnsafeRawBufferPointer) {
        switch self {
        case .rankRequest: RankRequestTarget.run(bytes)
        case .adminRequest: AdminRequestTarget.run(bytes)
        case .deframer: DeframerTarget.run(bytes)
        case .serverConnection: ServerConnectionTarget.run(bytes)
        case .snapshot: SnapshotTarget.run(bytes)
        case .rankingConfig: RankingConfigTarget.run(bytes)
        case .buildNPY: BuildInputTarget.run(bytes, kind: .npy)
        case .buildJSONL: BuildInputTarget.run(bytes, kind: .text)
        }
    }

    /// Runs the target on `bytes`.
    public func run(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { run($0) }
    }

    /// Valid (or nearly valid) inputs that start the fuzzer deep inside the format; `make
    /// fuzz-seeds` writes them to `Fuzz/Corpus/<target>/`.
    public func seeds() -> [(name: String, bytes: [UInt8])] {
        switch self {
        case .rankRequest: RankRequestTarget.seeds()
        case .adminRequest: AdminRequestTarget.seeds()
        case .deframer: DeframerTarget.seeds()
        case .serverConnection: ServerConnectionTarget.seeds()
        case .snapshot: SnapshotTarget.seeds()
        case .rankingConfig: RankingConfigTarget.seeds()
        case .buildNPY: BuildInputTarget.seeds(kind: .npy)
        case .buildJSONL: BuildInputTarget.seeds(kind: .text)
        }
    }
}

/// Traps with `message` when `condition` is false: a broken invariant is a finding, like a crash.
@inline(__always)
func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("fuzz invariant broken: \(message())") }
}

/// Reads an input from the front: small integers that steer a target (which file, how to split),
/// then the rest as payload. Reading past the end yields zeros and empty slices.
struct ByteCursor {
    private let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A big-endian 16-bit length, then that many bytes (fewer if the input ends).
    mutating func lengthPrefixed() -> UnsafeRawBufferPointer {
        let length = Int(byte()) << 8 | Int(byte())
        return take(length)
    }

    mutating func take(_ count: Int) -> UnsafeRawBufferPointer {
        let count = min(count, remaining)
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
    }

    mutating func rest() -> UnsafeRawBufferPointer { take(remaining) }
}

/// Builds inputs for `ByteCursor.lengthPrefixed()`.
func lengthPrefixed(_ parts: [[UInt8]]) -> [UInt8] {
    var out: [UInt8] = []
    for part in parts {
        let count = min(part.count, 0xFFFF)
        out += [UInt8(count >> 8), UInt8(count & 0xFF)] + part.prefix(count)
    }
    return out
}

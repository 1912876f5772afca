/// A gRPC status: a code from the gRPC specification and a human-readable message.
///
/// Handlers throw or return a `GRPCStatus` to fail a call; the server sends it as the
/// `grpc-status` / `grpc-message` trailers (percent-encoded, see ``GRPCPercentEncoding``).
public struct GRPCStatus: Error, Sendable, Hashable, CustomStringConvertible {
    /// The status codes of the gRPC specification (`doc/statuscodes.md`), with their wire values.
    public enum Code: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        case ok = 0
        case cancelled = 1
        case unknown = 2
        case invalidArgument = 3
        case deadlineExceeded = 4
        case notFound = 5
        case alreadyExists = 6
        case permissionDenied = 7
        case resourceExhausted = 8
        case failedPrecondition = 9
        case aborted = 10
        case outOfRange = 11
        case unimplemented = 12
        case `internal` = 13
        case unavailable = 14
        case dataLoss = 15
        case unauthenticated = 16

        /// The canonical upper-case name, e.g. `INVALID_ARGUMENT`.
        public var description: String {
            switch self {
            case .ok: "OK"
            case .cancelled: "CANCELLED"
            case .unknown: "UNKNOWN"
            case .invalidArgument: "INVALID_ARGUMENT"
            case .deadlineExceeded: "DEADLINE_EXCEEDED"
            case .notFound: "NOT_FOUND"
            case .alreadyExists: "ALREADY_EXISTS"
            case .permissionDenied: "PERMISSION_DENIED"
            case .resourceExhausted: "RESOURCE_EXHAUSTED"
            case .failedPrecondition: "FAILED_PRECONDITION"
            case .aborted: "ABORTED"
            case .outOfRange: "OUT_OF_RANGE"
            case .unimplemented: "UNIMPLEMENTED"
            case .internal: "INTERNAL"
            case .unavailable: "UNAVAILABLE"
            case .dataLoss: "DATA_LOSS"
            case .unauthenticated: "UNAUTHENTICATED"
            }
        }
    }

    /// The status code.
    public var code: Code
    /// A message for the caller; empty for `OK`. Sent percent-encoded in `grpc-message`.
    public var message: String

    /// Creates a status.
    public init(_ code: Code, _ message: String = "") {
        self.code = code
        self.message = message
    }

    /// The success status.
    public static let ok = GRPCStatus(.ok)

    public var description: String {
        message.isEmpty ? code.description : "\(code): \(message)"
    }
}

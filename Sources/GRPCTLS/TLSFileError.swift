/// A certificate, key or CA file that cannot be used. The message names the file and what is
/// wrong with it ("expired at 2026-01-01T00:00:00Z", "does not match the certificate", ...).
public struct TLSFileError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String

    /// An error with `description` as its message.
    public init(_ description: String) {
        self.description = description
    }
}

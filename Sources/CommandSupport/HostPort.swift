/// A `host:port` address as written on a command line or in a config file: `127.0.0.1:50051`,
/// `localhost:50051`, or `[::1]:50051` for IPv6. The one parser of addresses for every executable
/// (listen addresses, servers to call, load targets).
public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `text`.
    ///
    /// - Parameter allowPortZero: whether port 0 ("any free port", for listening) is accepted.
    /// - Throws: ``HostPortError`` saying what was expected; callers prefix the flag or field name.
    public init(parsing text: String, allowPortZero: Bool = false) throws(HostPortError) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw HostPortError("expected [IPv6]:port")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw HostPortError("expected host:port, e.g. 127.0.0.1:50051")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        let lowest = allowPortZero ? 0 : 1
        guard let port = Int(portPart), (lowest...65535).contains(port) else {
            throw HostPortError("port must be a number from \(lowest) to 65535")
        }
        guard !hostPart.isEmpty else { throw HostPortError("missing host") }
        host = String(hostPart)
        self.port = port
    }

    /// 127.0.0.0/8, `::1` or `localhost`.
    public var isLoopback: Bool {
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// `host:port`, with the host bracketed when it is an IPv6 address.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// An address that is not `host:port`; the message says what was expected.
public struct HostPortError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

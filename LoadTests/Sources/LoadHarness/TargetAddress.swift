/// A `host:port` target (`[::1]:port` for IPv6) and whether it is loopback.
public struct TargetAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    /// - Throws: ``LoadTestError`` with the expected form.
    public init(parsing text: String) throws(LoadTestError) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw LoadTestError("--target '\(text)': expected [IPv6]:port")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw LoadTestError("--target '\(text)': expected host:port, e.g. 127.0.0.1:50051")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
        }
        guard let port = Int(portPart), (1...65535).contains(port) else {
            throw LoadTestError("--target '\(text)': port must be a number from 1 to 65535")
        }
        guard !hostPart.isEmpty else { throw LoadTestError("--target '\(text)': missing host") }
        host = String(hostPart)
        self.port = port
    }

    /// 127.0.0.0/8, ::1 or `localhost`: the only targets allowed without `--allow-remote`.
    public var isLoopback: Bool {
        if host == "localhost" || host == "::1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A bad option or an unusable target: printed as one line.
public struct LoadTestError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Parses durations such as `30s`, `500ms`, `250us`, `2m` or a bare number of seconds.
public enum DurationText {
    /// Nanoseconds for `text`.
    ///
    /// - Throws: ``LoadTestError`` naming `option`.
    public static func nanoseconds(_ text: String, option: String) throws(LoadTestError) -> UInt64 {
        let units: [(suffix: String, scale: Double)] = [
            ("ms", 1e6), ("us", 1e3), ("µs", 1e3), ("ns", 1), ("s", 1e9), ("m", 60e9),
        ]
        var number = Substring(text)
        var scale = 1e9
        for unit in units where text.hasSuffix(unit.suffix) {
            number = text.dropLast(unit.suffix.count)
            scale = unit.scale
            break
        }
        guard let value = Double(number), value >= 0, value.isFinite else {
            throw LoadTestError("\(option) '\(text)': expected a duration such as 30s, 500ms, 250us or 2m")
        }
        return UInt64((value * scale).rounded())
    }
}

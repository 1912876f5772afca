public import CommandSupport

/// A `--target`: a `host:port` (`[::1]:port` for IPv6) and whether it is loopback.
public struct TargetAddress: Sendable, Equatable, CustomStringConvertible {
    public var address: HostPort
    public var host: String { address.host }
    public var port: Int { address.port }

    /// - Throws: ``LoadTestError`` naming `--target` and the expected form.
    public init(parsing text: String) throws(LoadTestError) {
        do {
            address = try HostPort(parsing: text)
        } catch {
            throw LoadTestError("--target '\(text)': \(error)")
        }
    }

    /// 127.0.0.0/8, ::1 or `localhost`: the only targets allowed without `--allow-remote`.
    public var isLoopback: Bool { address.isLoopback }

    public var description: String { address.description }
}

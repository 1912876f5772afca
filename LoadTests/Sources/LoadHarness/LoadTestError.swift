/// A bad option or an unusable target: printed as one line.
public struct LoadTestError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

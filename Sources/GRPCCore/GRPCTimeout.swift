/// The `grpc-timeout` header: `TimeoutValue TimeoutUnit`, where the value is 1 to 8 ASCII digits
/// and the unit one of `H` (hours), `M` (minutes), `S`, `m`, `u`, `n` (gRPC over HTTP/2 spec).
public enum GRPCTimeout {
    /// Parses a `grpc-timeout` value into nanoseconds.
    ///
    /// - Returns: the timeout in nanoseconds (saturating at `Int64.max`), or `nil` when the value
    ///   is not of the specified form (empty, more than 8 digits, unknown unit, non-digit).
    /// - Complexity: O(n) in the length of the value (at most 9 bytes for a valid one).
    public static func parseNanoseconds<Bytes: BidirectionalCollection<UInt8>>(_ value: Bytes) -> Int64? {
        let count = value.count
        guard count >= 2, count <= 9, let unit = value.last else { return nil }
        var amount: Int64 = 0
        for byte in value.dropLast() {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            amount = amount * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        let nanosPerUnit: Int64
        switch unit {
        case UInt8(ascii: "H"): nanosPerUnit = 3_600_000_000_000
        case UInt8(ascii: "M"): nanosPerUnit = 60_000_000_000
        case UInt8(ascii: "S"): nanosPerUnit = 1_000_000_000
        case UInt8(ascii: "m"): nanosPerUnit = 1_000_000
        case UInt8(ascii: "u"): nanosPerUnit = 1_000
        case UInt8(ascii: "n"): nanosPerUnit = 1
        default: return nil
        }
        let (product, overflow) = amount.multipliedReportingOverflow(by: nanosPerUnit)
        return overflow ? Int64.max : product
    }

    /// Formats a timeout for the `grpc-timeout` header, choosing the finest unit whose value
    /// fits in 8 digits (rounding up so a deadline is never shortened by formatting).
    public static func format(nanoseconds: Int64) -> String {
        let units: [(Int64, Character)] = [
            (1, "n"), (1_000, "u"), (1_000_000, "m"), (1_000_000_000, "S"), (60_000_000_000, "M"),
            (3_600_000_000_000, "H"),
        ]
        let nanos = max(nanoseconds, 0)
        for (scale, unit) in units {
            let value = (nanos + scale - 1) / scale
            if value <= 99_999_999 { return "\(value)\(unit)" }
        }
        return "99999999H"
    }
}

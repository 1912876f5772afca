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

public import Instrumentation

/// A W3C Trace Context (`traceparent`, https://www.w3.org/TR/trace-context/): which trace a call
/// belongs to, its parent span, and whether the caller sampled it.
public struct W3CTraceContext: Sendable, Hashable {
    /// 16 bytes, never all zero.
    public var traceID: [UInt8]
    /// 8 bytes, never all zero.
    public var spanID: [UInt8]
    public var sampled: Bool

    public init(traceID: [UInt8], spanID: [UInt8], sampled: Bool) {
        precondition(traceID.count == 16 && spanID.count == 8, "trace ids are 16 bytes, span ids 8")
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
    }

    /// Parses a `traceparent` header: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
    /// Returns nil for anything the spec says to ignore (bad length or hex, version `ff`, all-zero
    /// ids, a version-00 header with trailing data). Later versions may append `-…` fields.
    public init?(traceparent header: String) {
        let bytes = Array(header.utf8)
        guard bytes.count >= 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"),
            bytes[52] == UInt8(ascii: "-"),
            let version = Self.hex(bytes[0..<2]), version != [0xff],
            let trace = Self.hex(bytes[3..<35]), let span = Self.hex(bytes[36..<52]),
            let flags = Self.hex(bytes[53..<55]),
            trace.contains(where: { $0 != 0 }), span.contains(where: { $0 != 0 })
        else { return nil }
        if bytes.count > 55 && (version == [0] || bytes[55] != UInt8(ascii: "-")) { return nil }
        self.init(traceID: trace, spanID: span, sampled: flags[0] & 1 == 1)
    }

    /// The `traceparent` header for this context (version 00).
    public var traceparent: String {
        "00-\(Self.hex(traceID))-\(Self.hex(spanID))-\(sampled ? "01" : "00")"
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Lower-case hex only (the spec forbids upper case).
    private static func hex(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            guard let high = nibble(text[index]), let low = nibble(text[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}

/// Where a ``W3CTraceContext`` travels in an `InstrumentationContext`.
public enum W3CTraceContextKey: InstrumentationContextKey {
    public typealias Value = W3CTraceContext
}

import Foundation
import Tracing

#if canImport(Glibc)
    import Glibc
#endif

/// Where OTLP/HTTP traces go: `http://host:port/path` (plain HTTP; a collector on the host or
/// the pod, as OpenTelemetry deployments usually run one).
public struct OTLPEndpoint: Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var path: String

    /// Parses `http://host[:port][/path]`; the port defaults to 4318 and the path to `/v1/traces`.
    public init?(url: String) {
        guard url.hasPrefix("http://") else { return nil }
        var rest = Substring(url.dropFirst("http://".count))
        var path = "/v1/traces"
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        var host = rest
        var port = 4318
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()) else { return nil }
                port = value
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            guard let value = Int(rest[rest.index(after: colon)...]) else { return nil }
            port = value
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        self.host = String(host)
        self.port = port
        self.path = path
    }

    public var description: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)" }
}

/// Batches finished spans and posts them as OTLP/JSON from one background thread: at least once a
/// second, or as soon as 512 are waiting. At most 8192 wait; more are dropped (and counted), so a
/// collector that is down costs memory only up to that bound.
final class OTLPExporter: @unchecked Sendable {
    private let endpoint: OTLPEndpoint
    private let serviceName: String
    private let onError: @Sendable (String) -> Void
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var queue: [FinishedSpan] = []
    private var dropped = 0
    private var stopping = false
    private var flushRequested = false
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    static let batchSize = 512
    static let queueLimit = 8192

    init(endpoint: OTLPEndpoint, serviceName: String, onError: @escaping @Sendable (String) -> Void) {
        self.endpoint = endpoint
        self.serviceName = serviceName
        self.onError = onError
        let thread = Thread { [unowned self] in self.run() }
        thread.name = "rankd-otlp"
        self.thread = thread
        thread.start()
    }

    func enqueue(_ span: FinishedSpan) {
        condition.lock()
        if queue.count >= Self.queueLimit {
            dropped += 1
        } else {
            queue.append(span)
            if queue.count >= Self.batchSize { condition.signal() }
        }
        condition.unlock()
    }

    func flush() {
        condition.lock()
        flushRequested = true
        condition.signal()
        condition.unlock()
    }

    func shutdown() {
        condition.lock()
        guard !stopping else { return condition.unlock() }
        stopping = true
        condition.signal()
        condition.unlock()
        done.wait()
    }

    private func run() {
        while true {
            condition.lock()
            let deadline = Date(timeIntervalSinceNow: 1)
            while queue.count < Self.batchSize, !stopping, !flushRequested {
                if !condition.wait(until: deadline) { break }
            }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            let lost = dropped
            dropped = 0
            flushRequested = false
            let stop = stopping
            condition.unlock()
            if lost > 0 { onError("OTLP export queue full: dropped \(lost) spans") }
            if !batch.isEmpty {
                for start in stride(from: 0, to: batch.count, by: Self.batchSize) {
                    post(Array(batch[start..<min(start + Self.batchSize, batch.count)]))
                }
            }
            if stop { break }
        }
        done.signal()
    }

    private func post(_ spans: [FinishedSpan]) {
        let body = OTLPJSON.request(spans, serviceName: serviceName)
        do {
            let status = try HTTPPost.send(body, to: endpoint)
            if !(200..<300).contains(status) {
                onError("OTLP export to \(endpoint) answered HTTP \(status) (\(spans.count) spans lost)")
            }
        } catch {
            onError("OTLP export to \(endpoint) failed: \(error) (\(spans.count) spans lost)")
        }
    }
}

/// The OTLP/JSON encoding of `ExportTraceServiceRequest` (trace and span ids in hex, as OTLP's
/// JSON mapping specifies; 64-bit integers as strings).
enum OTLPJSON {
    static func request(_ spans: [FinishedSpan], serviceName: String) -> [UInt8] {
        var out = #"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"#
        out += quote(serviceName) + #"}}]},"scopeSpans":[{"scope":{"name":"rankd"},"spans":["#
        for (index, span) in spans.enumerated() {
            if index > 0 { out += "," }
            out += #"{"traceId":""# + W3CTraceContext.hex(span.traceID) + #"","spanId":""#
            out += W3CTraceContext.hex(span.spanID) + #"""#
            if let parent = span.parentSpanID { out += #","parentSpanId":""# + W3CTraceContext.hex(parent) + #"""# }
            out += #","name":"# + quote(span.name) + #","kind":\#(kind(span.kind))"#
            out += #","startTimeUnixNano":"\#(span.start)","endTimeUnixNano":"\#(span.end)""#
            out += #","attributes":"# + attributes(span.attributes)
            if !span.events.isEmpty {
                out += #","events":["#
                out += span.events.map { event in
                    #"{"timeUnixNano":"\#(event.time)","name":"# + quote(event.name) + #","attributes":"#
                        + attributes(event.attributes) + "}"
                }.joined(separator: ",")
                out += "]"
            }
            if let status = span.status {
                out += #","status":{"code":\#(status.code == .ok ? 1 : 2)"#
                if let message = status.message { out += #","message":"# + quote(message) }
                out += "}"
            }
            out += "}"
        }
        out += "]}]}]}"
        return Array(out.utf8)
    }

    /// OTLP SpanKind numbers.
    private static func kind(_ kind: SpanKind) -> Int {
        switch kind {
        case .internal: 1
        case .server: 2
        case .client: 3
        case .producer: 4
        case .consumer: 5
        }
    }

    private static func attributes(_ list: [(String, SpanAttribute)]) -> String {
        "[" + list.map { #"{"key":"# + quote($0.0) + #","value":"# + value($0.1) + "}" }.joined(separator: ",") + "]"
    }

    private static func value(_ attribute: SpanAttribute) -> String {
        switch attribute {
        case .int32(let value): #"{"intValue":"\#(value)"}"#
        case .int64(let value): #"{"intValue":"\#(value)"}"#
        case .double(let value): value.isFinite ? #"{"doubleValue":\#(value)}"# : #"{"stringValue":"\#(value)"}"#
        case .bool(let value): #"{"boolValue":\#(value)}"#
        case .string(let value): #"{"stringValue":"# + quote(value) + "}"
        default: #"{"stringValue":"# + quote("\(attribute)") + "}"
        }
    }

    /// A JSON string literal.
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// One blocking HTTP/1.1 POST on the exporter thread (5 s timeouts), returning the status code.
enum HTTPPost {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func send(_ body: [UInt8], to endpoint: OTLPEndpoint) throws -> Int {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(endpoint.host, String(endpoint.port), &hints, &list) == 0, let first = list else {
            throw Failure(description: "cannot resolve \(endpoint.host)")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            throw Failure(description: "connect: errno \(errno)")
        }
        let head =
            "POST \(endpoint.path) HTTP/1.1\r\nHost: \(endpoint.host):\(endpoint.port)\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        for chunk in [Array(head.utf8), body] {
            var sent = 0
            while sent < chunk.count {
                let written = chunk[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                guard written > 0 else { throw Failure(description: "write: errno \(errno)") }
                sent += written
            }
        }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !reply.contains(UInt8(ascii: "\n")) {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            reply += buffer[..<count]
        }
        // "HTTP/1.1 200 OK"
        let statusLine = String(
            decoding: reply.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else {
            throw Failure(description: "no HTTP status line in the reply")
        }
        return status
    }
}

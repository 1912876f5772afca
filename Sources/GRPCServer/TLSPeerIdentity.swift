import NIOSSL

/// Who a mutual-TLS client is: the names in the certificate it presented, which the server
/// verified against its client CAs during the handshake. Available to handlers as
/// ``ServerCallContext/tlsPeer``; `nil` on plaintext connections and TLS without client CAs.
public struct TLSPeerIdentity: Sendable, Hashable {
    /// The subject's common name, if any.
    public var commonName: String?
    /// `dNSName` subject alternative names.
    public var dnsNames: [String]
    /// `uniformResourceIdentifier` subject alternative names (SPIFFE ids are URIs).
    public var uris: [String]
    /// `rfc822Name` (email) subject alternative names.
    public var emails: [String]

    public init(commonName: String? = nil, dnsNames: [String] = [], uris: [String] = [], emails: [String] = []) {
        self.commonName = commonName
        self.dnsNames = dnsNames
        self.uris = uris
        self.emails = emails
    }

    /// The names of a verified client certificate.
    init(certificate: NIOSSLCertificate) {
        self.init(commonName: certificate.subjectName.first { $0.type == .commonName }?.value)
        for name in certificate._subjectAlternativeNames() {
            let text = name.contents.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
            switch name.nameType {
            case .dnsName: dnsNames.append(text)
            case .uri: uris.append(text)
            case .email: emails.append(text)
            default: break
            }
        }
    }

    /// Whether the certificate carries `name` (exact, case-sensitive match of one typed name).
    public func carries(_ name: CertificateName) -> Bool {
        switch name {
        case .commonName(let value): commonName == value
        case .dns(let value): dnsNames.contains(value)
        case .uri(let value): uris.contains(value)
        case .email(let value): emails.contains(value)
        }
    }

    /// `cn=… dns=… uri=…` for logs.
    public var summary: String {
        var parts: [String] = []
        if let commonName { parts.append("cn:\(commonName)") }
        parts += dnsNames.map { "dns:\($0)" } + uris.map { "uri:\($0)" } + emails.map { "email:\($0)" }
        return parts.joined(separator: ",")
    }
}

/// One typed name a client certificate may carry, written `KIND:VALUE` with KIND one of `cn`
/// (subject common name), `dns`, `uri`, `email` (subject alternative names), e.g.
/// `uri:spiffe://prod/publisher` or `cn:snapshot-publisher`.
public enum CertificateName: Sendable, Hashable, CustomStringConvertible {
    case commonName(String)
    case dns(String)
    case uri(String)
    case email(String)

    /// Parses `KIND:VALUE`.
    ///
    /// - Throws: a message naming the text when the kind is unknown or the value empty.
    public init(parsing text: String) throws(CertificateNameError) {
        guard let colon = text.firstIndex(of: ":") else {
            throw CertificateNameError(text: text)
        }
        let value = String(text[text.index(after: colon)...])
        guard !value.isEmpty else { throw CertificateNameError(text: text) }
        switch text[..<colon].lowercased() {
        case "cn": self = .commonName(value)
        case "dns": self = .dns(value)
        case "uri": self = .uri(value)
        case "email": self = .email(value)
        default: throw CertificateNameError(text: text)
        }
    }

    public var description: String {
        switch self {
        case .commonName(let value): "cn:\(value)"
        case .dns(let value): "dns:\(value)"
        case .uri(let value): "uri:\(value)"
        case .email(let value): "email:\(value)"
        }
    }
}

/// A certificate name that is not `KIND:VALUE` with a known kind.
public struct CertificateNameError: Error, CustomStringConvertible, Sendable {
    public let text: String
    public var description: String {
        "'\(text)': expected KIND:VALUE with KIND one of cn, dns, uri, email (e.g. uri:spiffe://prod/publisher)"
    }
}

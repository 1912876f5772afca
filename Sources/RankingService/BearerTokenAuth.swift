public import GRPCServer

/// Checks `authorization: Bearer <token>` metadata against one configured token, or accepts a
/// mutual-TLS client whose verified certificate carries one of the configured names.
///
/// Either suffices: a publishing job may authenticate by certificate alone, by token alone (also
/// through a proxy that terminates TLS), or carry both. The certificate was verified against the
/// server's client CAs in the handshake; here only its names are compared.
///
/// The token comparison takes time that depends only on the configured token's length, never on
/// how many leading bytes of a guess are right. Immutable and `Sendable`.
public struct BearerTokenAuth: Sendable {
    private let token: [UInt8]?
    /// Client certificate names that are accepted without a token.
    private let certificateNames: [CertificateName]
    /// What the calls it guards are called in messages ("admin RPCs", "Rank").
    private let scope: String
    /// How an operator configures the token, for the message when none is.
    private let howToConfigure: String

    /// - Parameters:
    ///   - token: the accepted token; `nil` or empty accepts no token (`PERMISSION_DENIED`).
    ///   - certificateNames: a mutual-TLS client whose certificate carries one of these is
    ///     accepted without a token. With neither a token nor names every call is refused.
    public init(
        token: String?, scope: String, howToConfigure: String, certificateNames: [CertificateName] = []
    ) {
        self.token = token.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
        self.certificateNames = certificateNames
        self.scope = scope
        self.howToConfigure = howToConfigure
    }

    /// Whether a token or a certificate name is configured (else every call is refused).
    public var isConfigured: Bool { token != nil || !certificateNames.isEmpty }

    /// `nil` when the call may proceed; otherwise the status to fail it with: `UNAUTHENTICATED`
    /// when the metadata is missing or not a bearer token, `PERMISSION_DENIED` when the token is
    /// wrong or none is configured.
    public func check(_ context: ServerCallContext) -> GRPCStatus? {
        if let peer = context.tlsPeer, certificateNames.contains(where: peer.carries) { return nil }
        guard let token else {
            guard !certificateNames.isEmpty else {
                return GRPCStatus(
                    .permissionDenied, "\(scope) are disabled: rankd has no token for them (\(howToConfigure))")
            }
            return GRPCStatus(
                context.tlsPeer == nil ? .unauthenticated : .permissionDenied,
                "\(scope) need a client certificate carrying one of: \(certificateHint(context))")
        }
        guard let header = context.metadataValue("authorization") else {
            let or =
                certificateNames.isEmpty ? "" : " or a client certificate carrying one of: \(certificateHint(context))"
            return GRPCStatus(.unauthenticated, "\(scope) need 'authorization: Bearer <token>' metadata\(or)")
        }
        let scheme = "bearer "
        guard header.utf8.count > scheme.utf8.count, header.lowercased().hasPrefix(scheme) else {
            return GRPCStatus(.unauthenticated, "authorization metadata must be 'Bearer <token>'")
        }
        let presented = Array(header.utf8.dropFirst(scheme.utf8.count))
        guard Self.constantTimeEqual(presented, token) else {
            return GRPCStatus(.permissionDenied, "wrong token for \(scope)")
        }
        return nil
    }

    /// The accepted certificate names and what this connection's certificate carries.
    private func certificateHint(_ context: ServerCallContext) -> String {
        let wanted = certificateNames.map(\.description).joined(separator: ", ")
        let carried = context.tlsPeer.map { "this one carries \($0.summary.isEmpty ? "no name" : $0.summary)" }
        return "\(wanted) (\(carried ?? "this connection presented no client certificate"))"
    }

    /// Compares in time that depends on `secret.count` only.
    static func constantTimeEqual(_ presented: [UInt8], _ secret: [UInt8]) -> Bool {
        var difference = UInt64(truncatingIfNeeded: presented.count ^ secret.count)
        for index in 0..<secret.count {
            let byte = index < presented.count ? presented[index] : 0
            difference |= UInt64(byte ^ secret[index])
        }
        return difference == 0
    }
}

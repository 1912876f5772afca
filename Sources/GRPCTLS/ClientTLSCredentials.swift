public import NIOSSL

/// How a gRPC client speaks TLS: whom it trusts and, for mutual TLS, what it presents.
public struct ClientTLSOptions: Sendable, Hashable {
    /// CA certificates (PEM) the server's certificate must chain to; `nil` for the system's roots.
    public var trustRoots: String?
    /// The client certificate (then intermediates), PEM, for mutual TLS; needs ``privateKey``.
    public var certificateChain: String?
    /// The client certificate's private key (PEM, unencrypted).
    public var privateKey: String?
    /// The name the server's certificate must carry (and the SNI sent) when it is not the host
    /// connected to, e.g. connecting by IP to a server whose certificate names it by DNS.
    public var serverName: String?

    public init(
        trustRoots: String? = nil, certificateChain: String? = nil, privateKey: String? = nil,
        serverName: String? = nil
    ) {
        self.trustRoots = trustRoots
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.serverName = serverName
    }
}

/// A client's TLS context, built once from ``ClientTLSOptions`` and shared by its connections.
///
/// It verifies the server's certificate chain and that the certificate names the server: a DNS
/// SAN matching the host connected to (or ``ClientTLSOptions/serverName``), or an IP SAN equal to
/// the address connected to (swift-nio-ssl accepts either). It offers ALPN `h2` only and speaks
/// TLS 1.2 or 1.3. Immutable and `Sendable`.
public final class ClientTLSCredentials: Sendable {
    /// The BoringSSL context connections are made with.
    public let context: NIOSSLContext
    /// The name checked against the server's certificate instead of the host connected to.
    public let serverName: String?

    /// Loads the files `options` names.
    ///
    /// - Throws: ``TLSFileError`` naming the file that cannot be used, or saying that a
    ///   certificate came without its key (or the reverse).
    public init(_ options: ClientTLSOptions) throws(TLSFileError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["h2"]
        if let path = options.trustRoots {
            let roots = try PEMFiles.certificates(PEMFiles.read(path, role: "CA"), path: path, role: "CA")
            configuration.trustRoots = .certificates(roots)
        }
        switch (options.certificateChain, options.privateKey) {
        case (nil, nil):
            break
        case (let certificatePath?, let keyPath?):
            let chain = try PEMFiles.certificates(
                PEMFiles.read(certificatePath, role: "client certificate"), path: certificatePath,
                role: "client certificate")
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(
                try PEMFiles.privateKey(PEMFiles.read(keyPath, role: "private key"), path: keyPath))
        case (_?, nil):
            throw TLSFileError("a TLS client certificate needs its private key")
        case (nil, _?):
            throw TLSFileError("a TLS private key needs its client certificate")
        }
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch NIOSSLError.failedToLoadPrivateKey {
            throw TLSFileError(
                "TLS private key file \(options.privateKey ?? ""): does not match the certificate in \(options.certificateChain ?? "")"
            )
        } catch {
            throw TLSFileError("TLS client configuration cannot be used: \(error)")
        }
        serverName = options.serverName
    }
}

extension ClientTLSCredentials {
    /// Credentials for a command's `--tls --ca --cert --key --server-name` flags: `nil` (cleartext)
    /// unless `tls` is set or `options` names a file or a server name, which imply TLS.
    public static func forFlags(tls: Bool, _ options: ClientTLSOptions) throws(TLSFileError) -> ClientTLSCredentials? {
        guard tls || options != ClientTLSOptions() else { return nil }
        return try ClientTLSCredentials(options)
    }
}

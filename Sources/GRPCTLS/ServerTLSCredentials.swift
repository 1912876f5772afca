import Foundation
import NIOConcurrencyHelpers
public import NIOSSL

/// The PEM files a TLS server serves from.
public struct ServerTLSFiles: Sendable, Hashable {
    /// The server certificate, then any intermediates (PEM).
    public var certificateChain: String
    /// The certificate's private key (PEM, unencrypted).
    public var privateKey: String
    /// CA certificates (PEM) that client certificates must chain to; `nil` for no client
    /// certificates (plain TLS). When set, every client must present a valid one (mutual TLS).
    public var clientCA: String?

    public init(certificateChain: String, privateKey: String, clientCA: String? = nil) {
        self.certificateChain = certificateChain
        self.privateKey = privateKey
        self.clientCA = clientCA
    }
}

/// What a server certificate is, for logs.
public struct TLSCertificateSummary: Sendable, Equatable, CustomStringConvertible {
    /// The subject's common name (empty when it has none).
    public var subject: String
    /// The serial number in hex.
    public var serial: String
    /// When it expires, `2026-01-31T12:00:00Z`.
    public var notValidAfter: String
    /// How many CA certificates client certificates are checked against (0: no mutual TLS).
    public var clientCACount: Int

    public var description: String {
        "subject=\(subject) serial=\(serial) not_after=\(notValidAfter) client_cas=\(clientCACount)"
    }
}

/// What a reload did.
public enum TLSReloadOutcome: Sendable, Equatable {
    /// The files hold what is already serving.
    case unchanged
    /// New connections now get this certificate; open ones keep theirs.
    case reloaded(TLSCertificateSummary)
    /// The files could not be used; the previous certificate keeps serving.
    case refused(TLSFileError)
}

/// A TLS server's certificate, key and client CAs, reloadable while serving.
///
/// Every new connection takes ``context`` at accept; a reload swaps it for connections accepted
/// afterwards. Connections already open keep the context they were accepted with, so a reload
/// never drops one. A reload whose files cannot be used (unreadable, not PEM, key not matching
/// the certificate, certificate expired or not yet valid) is refused and the previous context
/// keeps serving.
///
/// The context offers ALPN `h2` only and accepts TLS 1.2 and 1.3 (RFC 9113 §9.2 requires 1.2+).
///
/// Thread-safe: ``context`` is one short lock; reloads are serialised by the same lock.
public final class ServerTLSCredentials: Sendable {
    /// The files this server reads.
    public let files: ServerTLSFiles
    private let state: NIOLockedValueBox<State>

    private struct State {
        var context: NIOSSLContext
        var summary: TLSCertificateSummary
        /// The bytes the serving context was built from (certificate, key, client CA).
        var contents: [[UInt8]]
        /// The bytes of the last refused reload, so a bad file is reported once, not on every poll.
        var refusedContents: [[UInt8]]?
    }

    /// Loads `files`.
    ///
    /// - Throws: ``TLSFileError`` naming the file that cannot be used.
    public init(files: ServerTLSFiles) throws(TLSFileError) {
        self.files = files
        let contents = try Self.read(files)
        let (context, summary) = try Self.makeContext(files: files, contents: contents)
        self.state = NIOLockedValueBox(State(context: context, summary: summary, contents: contents))
    }

    /// The context new connections are accepted with.
    public var context: NIOSSLContext { state.withLockedValue { $0.context } }

    /// The certificate serving now.
    public var summary: TLSCertificateSummary { state.withLockedValue { $0.summary } }

    /// Reads the files again and serves them from the next accepted connection on (on SIGHUP).
    public func reload() -> TLSReloadOutcome {
        reload(reportRepeatedRefusal: true)
    }

    /// Like ``reload()``, but `nil` when nothing changed since the last load or refusal: for a
    /// poll that must log each change once.
    public func reloadIfChanged() -> TLSReloadOutcome? {
        let outcome = reload(reportRepeatedRefusal: false)
        return outcome == .unchanged ? nil : outcome
    }

    private func reload(reportRepeatedRefusal: Bool) -> TLSReloadOutcome {
        let contents: [[UInt8]]
        do {
            contents = try Self.read(files)
        } catch {
            return state.withLockedValue { state in
                // An unreadable file has no bytes to remember; report it once per episode.
                if state.refusedContents == [] && !reportRepeatedRefusal { return .unchanged }
                state.refusedContents = []
                return .refused(error)
            }
        }
        return state.withLockedValue { state in
            if contents == state.contents {
                state.refusedContents = nil
                return .unchanged
            }
            if contents == state.refusedContents && !reportRepeatedRefusal { return .unchanged }
            do throws(TLSFileError) {
                let (context, summary) = try Self.makeContext(files: files, contents: contents)
                state = State(context: context, summary: summary, contents: contents)
                return .reloaded(summary)
            } catch {
                state.refusedContents = contents
                return .refused(error)
            }
        }
    }

    /// Polls the files every `interval` and reloads when their bytes change (also when a
    /// directory's symlink is swapped, as Kubernetes does for mounted secrets). Each change is
    /// reported once to `report`. Cancel the returned task to stop.
    public func watch(
        every interval: Duration, report: @escaping @Sendable (TLSReloadOutcome) -> Void
    ) -> Task<Void, Never> {
        Task.detached { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { break }
                if let outcome = reloadIfChanged() { report(outcome) }
            }
        }
    }

    private static func read(_ files: ServerTLSFiles) throws(TLSFileError) -> [[UInt8]] {
        var contents = [
            try PEMFiles.read(files.certificateChain, role: "certificate"),
            try PEMFiles.read(files.privateKey, role: "private key"),
        ]
        if let clientCA = files.clientCA { contents.append(try PEMFiles.read(clientCA, role: "client CA")) }
        return contents
    }

    private static func makeContext(
        files: ServerTLSFiles, contents: [[UInt8]], now: Int = Int(Date().timeIntervalSince1970)
    ) throws(TLSFileError) -> (NIOSSLContext, TLSCertificateSummary) {
        let chain = try PEMFiles.certificates(contents[0], path: files.certificateChain, role: "certificate")
        let key = try PEMFiles.privateKey(contents[1], path: files.privateKey)
        try PEMFiles.checkValidity(chain[0], path: files.certificateChain, now: now)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["h2"]
        var clientCAs: [NIOSSLCertificate] = []
        if let clientCA = files.clientCA {
            clientCAs = try PEMFiles.certificates(contents[2], path: clientCA, role: "client CA")
            // Verify the chain, require a certificate; no hostname: a client has none to match.
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(clientCAs)
            configuration.sendCANameList = true
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch NIOSSLError.failedToLoadPrivateKey {
            // BoringSSL refuses a key whose public half is not the certificate's.
            throw TLSFileError(
                "TLS private key file \(files.privateKey): does not match the certificate in \(files.certificateChain)")
        } catch {
            throw TLSFileError(
                "TLS certificate \(files.certificateChain) with key \(files.privateKey): cannot be used (\(error))")
        }
        let summary = TLSCertificateSummary(
            subject: PEMFiles.commonName(chain[0]) ?? "", serial: PEMFiles.hex(chain[0].serialNumber),
            notValidAfter: PEMFiles.isoDate(chain[0].notValidAfter), clientCACount: clientCAs.count)
        return (context, summary)
    }
}

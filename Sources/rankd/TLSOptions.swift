import ArgumentParser
import Dispatch
import Foundation
import GRPCServer
import Logging

/// rankd's TLS settings: flags (or config file keys) turned into server credentials, the admin
/// certificate names, and the reload triggers (SIGHUP, file changes).
struct TLSOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "TLS: the server certificate chain, PEM (with --tls-key). The port then speaks TLS only: ALPN h2, TLS 1.2+.",
            valueName: "file"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("TLS: the certificate's private key, PEM, unencrypted.", valueName: "file"))
    var tlsKey: String?

    @Option(
        help: ArgumentHelp(
            "Mutual TLS: CA certificates (PEM) that client certificates must chain to; every client must present one.",
            valueName: "file"))
    var tlsClientCa: String?

    @Option(
        name: .customLong("tls-admin-identity"),
        help: ArgumentHelp(
            "Mutual TLS: a client certificate carrying this name may call the admin RPCs without the token (repeatable).",
            discussion: "cn:NAME (subject common name), dns:NAME, uri:URI (e.g. a SPIFFE id) or email:ADDRESS (SANs).",
            valueName: "kind:value"))
    var tlsAdminIdentities: [String] = []

    @Option(help: "Seconds between checks of the TLS files for changes (default 5; 0: reload on SIGHUP only).")
    var tlsWatchInterval: Double?

    /// The server credentials, or `nil` when TLS is not configured (cleartext h2c).
    ///
    /// - Throws: `ValidationError` naming the flag for incomplete settings or an unusable file.
    func credentials(file: ConfigFile) throws -> ServerTLSCredentials? {
        if let seconds = tlsWatchInterval ?? file.tlsWatchIntervalSeconds, !(seconds >= 0) {
            throw ValidationError("--tls-watch-interval must be 0 or more, got \(seconds)")
        }
        let certificate = tlsCert ?? file.tlsCert
        let key = tlsKey ?? file.tlsKey
        let clientCA = tlsClientCa ?? file.tlsClientCA
        guard let certificate, let key else {
            if certificate != nil || key != nil {
                throw ValidationError("--tls-cert and --tls-key go together")
            }
            if clientCA != nil { throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key") }
            if !adminIdentityTexts(file).isEmpty {
                throw ValidationError("--tls-admin-identity needs mutual TLS (--tls-cert, --tls-key, --tls-client-ca)")
            }
            return nil
        }
        if clientCA == nil, !adminIdentityTexts(file).isEmpty {
            throw ValidationError(
                "--tls-admin-identity needs --tls-client-ca: without it no client certificate is verified")
        }
        do throws(TLSFileError) {
            return try ServerTLSCredentials(
                files: ServerTLSFiles(certificateChain: certificate, privateKey: key, clientCA: clientCA))
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// `--tls-admin-identity` values, parsed.
    func adminIdentities(file: ConfigFile) throws -> [CertificateName] {
        try adminIdentityTexts(file).map { text in
            do throws(CertificateNameError) {
                return try CertificateName(parsing: text)
            } catch {
                throw ValidationError("--tls-admin-identity \(error)")
            }
        }
    }

    private func adminIdentityTexts(_ file: ConfigFile) -> [String] {
        tlsAdminIdentities.isEmpty ? file.tlsAdminIdentities ?? [] : tlsAdminIdentities
    }

    /// Reloads `credentials` on SIGHUP and, unless the interval is 0, when the files change.
    /// Every outcome is logged; a refused reload says the previous certificate keeps serving.
    func startReloading(_ credentials: ServerTLSCredentials, file: ConfigFile, logger: Logger) {
        let seconds = tlsWatchInterval ?? file.tlsWatchIntervalSeconds ?? 5
        let log: @Sendable (TLSReloadOutcome, String) -> Void = { outcome, trigger in
            switch outcome {
            case .unchanged:
                logger.info("TLS files unchanged", metadata: ["trigger": "\(trigger)"])
            case .reloaded(let summary):
                logger.info(
                    "TLS certificate reloaded: new connections use it, open ones keep theirs",
                    metadata: Self.metadata(summary).merging(["trigger": "\(trigger)"]) { $1 })
            case .refused(let error):
                logger.error(
                    "TLS reload refused: the previous certificate keeps serving",
                    metadata: ["trigger": "\(trigger)", "reason": "\(error)"])
            }
        }
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "rankd.sighup"))
        source.setEventHandler { log(credentials.reload(), "SIGHUP") }
        source.resume()
        TLSReloadSources.keepAlive.append(source)
        if seconds > 0 {
            _ = credentials.watch(every: .milliseconds(Int64(seconds * 1000))) { log($0, "file change") }
        }
        logger.info(
            "TLS reload on SIGHUP\(seconds > 0 ? " and on file change" : "")",
            metadata: seconds > 0 ? ["watch_interval_s": "\(seconds)"] : [:])
    }

    /// Log metadata for a certificate.
    static func metadata(_ summary: TLSCertificateSummary) -> Logger.Metadata {
        [
            "subject": "\(summary.subject)", "serial": "\(summary.serial)", "not_after": "\(summary.notValidAfter)",
            "client_cas": "\(summary.clientCACount)",
        ]
    }
}

/// Keeps the SIGHUP source alive for the life of the process.
private enum TLSReloadSources {
    // Written once, at startup, before any signal can arrive.
    nonisolated(unsafe) static var keepAlive: [any DispatchSourceSignal] = []
}

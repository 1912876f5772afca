import ArgumentParser
import GRPCClient

/// `--tls --ca --cert --key --server-name`: how rankctl reaches a rankd that serves TLS.
struct TLSClientFlags: ParsableArguments {
    @Flag(help: "Connect with TLS (implied by --ca, --cert and --key).")
    var tls = false

    @Option(
        help: ArgumentHelp(
            "CA certificates (PEM) to verify the server with (default: the system's).", valueName: "file"))
    var ca: String?

    @Option(help: ArgumentHelp("Mutual TLS: the client certificate (PEM), with --key.", valueName: "file"))
    var cert: String?

    @Option(help: ArgumentHelp("Mutual TLS: the client certificate's private key (PEM).", valueName: "file"))
    var key: String?

    @Option(help: "The name the server's certificate must carry when it is not the host connected to.")
    var serverName: String?

    /// The TLS credentials, or `nil` for cleartext (none of the flags given).
    func credentials() throws -> ClientTLSCredentials? {
        do throws(TLSFileError) {
            return try ClientTLSCredentials.forFlags(
                tls: tls,
                ClientTLSOptions(trustRoots: ca, certificateChain: cert, privateKey: key, serverName: serverName))
        } catch {
            throw ValidationError(error.description)
        }
    }
}

import ArgumentParser
import CommandSupport
import Foundation
import GRPCClient
import GRPCCore
import NIOCore
import NIOPosix

/// Options every admin command shares: where rankd is and the admin token.
struct AdminConnectionOptions: ParsableArguments {
    @Option(help: "rankd address, host:port.")
    var server = "127.0.0.1:50051"

    @Option(help: "File holding the admin bearer token (default: the RANKD_ADMIN_TOKEN environment variable).")
    var tokenFile: String?

    @Option(help: "Deadline in seconds.")
    var timeout = 600

    /// The token from `--token-file` or `RANKD_ADMIN_TOKEN`, read as rankd reads its own
    /// (``BearerTokenSource``: trimmed, a blank variable counts as unset).
    func token() throws -> String {
        let token: String?
        do throws(BearerTokenSource.ReadError) {
            token = try BearerTokenSource.read(file: tokenFile, environment: "RANKD_ADMIN_TOKEN", flag: "--token-file")
        } catch {
            throw ValidationError(error.description)
        }
        guard let token else {
            throw ValidationError("no admin token: pass --token-file PATH or set RANKD_ADMIN_TOKEN")
        }
        return token
    }

    /// `authorization` metadata for the calls.
    func metadata() throws -> [(String, String)] { [("authorization", "Bearer \(try token())")] }

    /// Connects to `server`.
    func connect() async throws -> GRPCClientConnection {
        let (host, port) = try parseAddress(server)
        do {
            return try await GRPCClientConnection.connect(
                host: host, port: port, group: MultiThreadedEventLoopGroup.singleton)
        } catch {
            throw CommandFailure("cannot connect to \(server): \(error)")
        }
    }

    /// One unary admin call: the response message, or a `CommandFailure` naming the status.
    func unary(_ method: String, request: ByteBuffer) async throws -> ByteBuffer {
        let metadata = try metadata()
        let connection = try await connect()
        let result = try await connection.unary(
            path: "/ranking.v1.SnapshotAdmin/\(method)", request: request, metadata: metadata,
            timeout: .seconds(Int64(timeout))
        ).get()
        await connection.close()
        do {
            return try result.unaryResponse()
        } catch {
            throw CommandFailure("\(method) failed: \(error)")
        }
    }
}

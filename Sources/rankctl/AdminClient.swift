import ArgumentParser
import CommandSupport
import Foundation
import GRPCClient
import GRPCCore
import NIOCore
import NIOPosix
import RankingAPI

/// Options every admin command shares: where rankd is (one replica or a fleet) and the admin token.
struct AdminConnectionOptions: ParsableArguments {
    @Option(help: "rankd address, host:port.")
    var server = "127.0.0.1:50051"

    @Option(
        help: ArgumentHelp(
            "Replicas, comma-separated host:port list: run on every one (replaces --server).",
            discussion: "publish uploads to all in parallel and activates only when every upload succeeded."))
    var servers: String?

    @Option(help: "File holding the admin bearer token (default: the RANKD_ADMIN_TOKEN environment variable).")
    var tokenFile: String?

    @Option(help: "Deadline in seconds.")
    var timeout = 600

    @OptionGroup(title: "TLS")
    var tls: TLSClientFlags

    /// The `authorization` metadata: the token from `--token-file` or `RANKD_ADMIN_TOKEN`, read as
    /// rankd reads its own (``BearerTokenSource``: trimmed, a blank variable counts as unset).
    /// None with a client certificate (`--cert`) and no token: rankd may map the certificate to
    /// the admin role (`rankd --tls-admin-identity`).
    func authorization() throws -> [(String, String)] {
        let token: String?
        do throws(BearerTokenSource.ReadError) {
            token = try BearerTokenSource.read(file: tokenFile, environment: "RANKD_ADMIN_TOKEN", flag: "--token-file")
        } catch {
            throw ValidationError(error.description)
        }
        if let token { return [("authorization", "Bearer \(token)")] }
        guard tls.cert != nil else {
            throw ValidationError(
                "no admin token: pass --token-file PATH or set RANKD_ADMIN_TOKEN (or a client certificate with --cert)")
        }
        return []
    }

    /// `--servers` split into addresses, each checked; nil when it was not given.
    func fleetAddresses() throws -> [String]? {
        guard let servers else { return nil }
        let addresses = servers.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !addresses.isEmpty, !addresses.contains(where: \.isEmpty) else {
            throw ValidationError("--servers: expected host:port[,host:port...], got '\(servers)'")
        }
        guard Set(addresses).count == addresses.count else {
            throw ValidationError("--servers: '\(servers)' names a replica twice")
        }
        for address in addresses { _ = try parseAddress(address) }
        return addresses
    }

    /// The endpoint for `--server` with this token, deadline and TLS.
    func endpoint() throws -> AdminEndpoint {
        try endpoint(server, tls: tls.credentials())
    }

    /// Endpoints for `--servers` (sharing one TLS context), or nil when it was not given.
    func fleet() throws -> [AdminEndpoint]? {
        guard let addresses = try fleetAddresses() else { return nil }
        let credentials = try tls.credentials()
        return try addresses.map { try endpoint($0, tls: credentials) }
    }

    private func endpoint(_ address: String, tls credentials: ClientTLSCredentials?) throws -> AdminEndpoint {
        AdminEndpoint(address: address, metadata: try authorization(), timeout: timeout, tls: credentials)
    }

    /// One unary admin call on `--server`.
    func unary(_ method: String, request: ByteBuffer) async throws -> ByteBuffer {
        try await endpoint().unary(method, request: request)
    }
}

/// One rankd's admin API: its address, the `authorization` metadata and the deadline. Plain values,
/// so the calls of a fleet command run in parallel tasks.
struct AdminEndpoint: Sendable {
    let address: String
    let metadata: [(String, String)]
    /// Deadline of each call, in seconds.
    let timeout: Int
    /// `nil` for cleartext.
    let tls: ClientTLSCredentials?

    /// Connects to `address`.
    func connect() async throws -> GRPCClientConnection {
        let (host, port) = try parseAddress(address)
        do {
            return try await GRPCClientConnection.connect(
                host: host, port: port, group: MultiThreadedEventLoopGroup.singleton, tls: tls)
        } catch {
            throw CommandFailure("cannot connect to \(address): \(error)")
        }
    }

    /// One unary `SnapshotAdmin` call: the response message, or a `CommandFailure` naming the status.
    func unary(_ method: String, request: ByteBuffer) async throws -> ByteBuffer {
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

    /// `Activate(version)`.
    func activate(_ version: String) async throws -> ActivationResult {
        try AdminCodec.decodeActivation(
            try await unary("Activate", request: AdminCodec.encodeActivateRequest(version: version)))
    }

    /// `Rollback`: back to the version active before the current one.
    func rollback() async throws -> ActivationResult {
        try AdminCodec.decodeActivation(try await unary("Rollback", request: ByteBuffer()))
    }

    /// `UpdateItems(request)`.
    func updateItems(_ request: UpdateItemsRequest) async throws -> UpdateItemsResult {
        try AdminCodec.decodeUpdateItemsResponse(
            try await unary("UpdateItems", request: AdminCodec.encodeUpdateItemsRequest(request)))
    }

    /// `DeleteUser(userID)`.
    func deleteUser(_ userID: String) async throws -> DeleteUserResult {
        try AdminCodec.decodeDeleteUserResponse(
            try await unary("DeleteUser", request: AdminCodec.encodeDeleteUserRequest(userID: userID)))
    }

    /// `Status`.
    func status() async throws -> SnapshotStatus {
        try AdminCodec.decodeStatus(try await unary("Status", request: ByteBuffer()))
    }
}

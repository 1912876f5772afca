import ArgumentParser
import Foundation
import NIOCore
import RankingAPI

/// `rankctl activate VERSION`: make a retained version active.
struct ActivateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activate", abstract: "Make a snapshot version in rankd's snapshot root the active one.")

    @Argument(help: "Version to activate.")
    var version: String

    @OptionGroup var connection: AdminConnectionOptions

    func run() async throws {
        let response = try await connection.unary(
            "Activate", request: AdminCodec.encodeActivateRequest(version: version))
        let result = try AdminCodec.decodeActivation(response)
        print(
            "active: \(result.activeVersion) (was \(result.previousVersion.isEmpty ? "none" : result.previousVersion)); "
                + String(format: "loaded in %.1f ms", result.loadMilliseconds))
    }
}

/// `rankctl rollback`: return to the version active before the current one.
struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Return rankd to the snapshot version that was active before the current one.")

    @OptionGroup var connection: AdminConnectionOptions

    func run() async throws {
        let response = try await connection.unary("Rollback", request: ByteBuffer())
        let result = try AdminCodec.decodeActivation(response)
        print(
            "active: \(result.activeVersion) (rolled back from \(result.previousVersion)); "
                + String(format: "loaded in %.1f ms", result.loadMilliseconds))
    }
}

/// `rankctl status`: the active version and the retained ones.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show rankd's active snapshot version and the versions it retains.")

    @OptionGroup var connection: AdminConnectionOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let status = try AdminCodec.decodeStatus(try await connection.unary("Status", request: ByteBuffer()))
        if json {
            let object: [String: Any] = [
                "activeVersion": status.activeVersion, "activatedAtUnixMs": status.activatedAtUnixMilliseconds,
                "activatedBy": status.activatedBy, "rollbackVersion": status.rollbackVersion,
                "items": status.items, "users": status.users, "dimension": status.dimension,
                "bytesMapped": status.bytesMapped, "mappedSnapshots": status.mappedSnapshots,
                "bytesMappedTotal": status.bytesMappedTotal, "retain": status.retain,
                "retained": status.retained.map {
                    [
                        "version": $0.version, "bytes": $0.bytes, "items": $0.items, "users": $0.users,
                        "dimension": $0.dimension, "createdAt": $0.createdAt,
                    ] as [String: Any]
                },
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        if status.activeVersion.isEmpty {
            print("active: none (Rank answers UNAVAILABLE)")
        } else {
            let at = Date(timeIntervalSince1970: Double(status.activatedAtUnixMilliseconds) / 1000)
            print(
                "active: \(status.activeVersion) since \(ISO8601DateFormatter().string(from: at)) (by \(status.activatedBy)); "
                    + "\(status.items) items, \(status.users) users, dim \(status.dimension), "
                    + "\(SnapshotCommandSupport.byteCount(status.bytesMapped)) mapped")
        }
        print("rollback target: \(status.rollbackVersion.isEmpty ? "none" : status.rollbackVersion)")
        print(
            "mapped snapshots: \(status.mappedSnapshots) (\(SnapshotCommandSupport.byteCount(status.bytesMappedTotal))); "
                + "retain \(status.retain)")
        print("retained versions (newest first):")
        for info in status.retained {
            let marker = info.version == status.activeVersion ? "*" : " "
            print(
                " \(marker) \(info.version)  \(info.items) items, \(info.users) users, dim \(info.dimension), "
                    + "\(SnapshotCommandSupport.byteCount(info.bytes)), created \(info.createdAt)")
        }
    }
}

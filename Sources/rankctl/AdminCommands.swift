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
        if let fleet = try connection.fleet() {
            try await Fleet.activateAll(version, on: fleet)
            return
        }
        print(Fleet.describe(try await connection.endpoint().activate(version)))
    }
}

/// `rankctl rollback`: return to the version active before the current one.
struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Return rankd to the snapshot version that was active before the current one.")

    @OptionGroup var connection: AdminConnectionOptions

    func run() async throws {
        guard let fleet = try connection.fleet() else {
            let result = try await connection.endpoint().rollback()
            print(
                "active: \(result.activeVersion) (rolled back from \(result.previousVersion)); "
                    + String(format: "loaded in %.1f ms", result.loadMilliseconds))
            return
        }
        // Every replica goes back one step in its own history, in parallel.
        let results = await Fleet.onEach(fleet) { _, endpoint in try await endpoint.rollback() }
        let failed = Fleet.printEach(fleet, results, failing: "rollback") {
            "active: \($0.activeVersion) (rolled back from \($0.previousVersion))"
        }
        if !failed.isEmpty {
            throw CommandFailure("rollback failed on \(failed.joined(separator: ", "))")
        }
    }
}

/// `rankctl status`: the active version and the retained ones; with `--servers`, the fleet's
/// versions side by side.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show rankd's active snapshot version and the versions it retains (or every replica's).",
        discussion: "With --servers the exit status is non-zero when a replica is unreachable or the versions differ.")

    @OptionGroup var connection: AdminConnectionOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        if let fleet = try connection.fleet() {
            try await fleetStatus(fleet)
            return
        }
        let status = try await connection.endpoint().status()
        if json {
            print(try Self.jsonText(Self.jsonObject(status)))
            return
        }
        if status.activeVersion.isEmpty {
            print("active: none (Rank answers UNAVAILABLE)")
        } else {
            print(
                "active: \(status.activeVersion) since \(Self.since(status)) (by \(status.activatedBy)); "
                    + "\(status.items) items, \(status.users) users, dim \(status.dimension), "
                    + "\(SnapshotCommandSupport.byteCount(status.bytesMapped)) mapped")
        }
        print("rollback target: \(status.rollbackVersion.isEmpty ? "none" : status.rollbackVersion)")
        let overlay = status.overlay
        print(
            "live overlay: \(overlay.items) items changed (\(overlay.removedItems) removed), "
                + "\(overlay.deletedUsers) users deleted; log \(SnapshotCommandSupport.byteCount(overlay.logBytes)), "
                + "sequence \(overlay.sequence)")
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

    /// One row per replica, then one line on whether the fleet agrees.
    private func fleetStatus(_ fleet: [AdminEndpoint]) async throws {
        let statuses = await Fleet.onEach(fleet) { _, endpoint in try await endpoint.status() }
        let versions = Set(statuses.compactMap { try? $0.get().activeVersion })
        let unreachable = zip(fleet, statuses).filter { (try? $1.get()) == nil }.map(\.0.address)
        if json {
            let rows: [[String: Any]] = zip(fleet, statuses).map { endpoint, status in
                switch status {
                case .success(let status): return ["server": endpoint.address, "status": Self.jsonObject(status)]
                case .failure(let error): return ["server": endpoint.address, "error": "\(error)"]
                }
            }
            print(try Self.jsonText(["replicas": rows, "consistent": unreachable.isEmpty && versions.count == 1]))
        } else {
            var table = [["REPLICA", "ACTIVE", "SINCE", "BY", "ROLLBACK", "ITEMS", "USERS", "RETAINED"]]
            for (endpoint, status) in zip(fleet, statuses) {
                switch status {
                case .success(let s):
                    table.append([
                        endpoint.address, s.activeVersion.isEmpty ? "none" : s.activeVersion,
                        s.activeVersion.isEmpty ? "-" : Self.since(s), s.activatedBy.isEmpty ? "-" : s.activatedBy,
                        s.rollbackVersion.isEmpty ? "-" : s.rollbackVersion, "\(s.items)", "\(s.users)",
                        s.retained.map(\.version).joined(separator: ","),
                    ])
                case .failure(let error): table.append([endpoint.address, "UNREACHABLE: \(error)"])
                }
            }
            let widths = (0..<table[0].count).map { column in
                table.filter { $0.count == table[0].count }.map { $0[column].count }.max() ?? 0
            }
            for row in table {
                let cells = row.enumerated().map { column, cell in
                    column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                }
                print(cells.joined(separator: "  "))
            }
        }
        if !unreachable.isEmpty {
            throw CommandFailure("unreachable: \(unreachable.joined(separator: ", "))")
        }
        guard versions.count == 1, let version = versions.first else {
            throw CommandFailure("the replicas serve different versions: \(versions.sorted().joined(separator: ", "))")
        }
        if !json { print("all \(fleet.count) replicas active on \(version.isEmpty ? "none" : version)") }
    }

    private static func since(_ status: SnapshotStatus) -> String {
        ISO8601DateFormatter().string(
            from: Date(timeIntervalSince1970: Double(status.activatedAtUnixMilliseconds) / 1000))
    }

    private static func jsonObject(_ status: SnapshotStatus) -> [String: Any] {
        [
            "activeVersion": status.activeVersion, "activatedAtUnixMs": status.activatedAtUnixMilliseconds,
            "activatedBy": status.activatedBy, "rollbackVersion": status.rollbackVersion,
            "items": status.items, "users": status.users, "dimension": status.dimension,
            "bytesMapped": status.bytesMapped, "mappedSnapshots": status.mappedSnapshots,
            "bytesMappedTotal": status.bytesMappedTotal, "retain": status.retain,
            "overlay": [
                "items": status.overlay.items, "removedItems": status.overlay.removedItems,
                "deletedUsers": status.overlay.deletedUsers, "logBytes": status.overlay.logBytes,
                "sequence": status.overlay.sequence,
            ] as [String: Any],
            "retained": status.retained.map {
                [
                    "version": $0.version, "bytes": $0.bytes, "items": $0.items, "users": $0.users,
                    "dimension": $0.dimension, "createdAt": $0.createdAt,
                ] as [String: Any]
            },
        ]
    }

    private static func jsonText(_ object: [String: Any]) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

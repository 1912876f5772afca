import ArgumentParser
import Foundation
import Snapshot

/// `rankctl verify`: everything activation checks — open, checksums, structure, graph and value indexes.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a snapshot: headers, sizes, checksums, id tables, columns, lists and the HNSW graph.")

    @Argument(help: "Snapshot directory.")
    var directory: String

    func run() throws {
        try SnapshotCommandSupport.run("verify") { () throws(SnapshotError) in
            let started = Date()
            let snapshot = try Snapshot.open(directory: directory)
            let opened = Date()
            try snapshot.verifyChecksums()
            try snapshot.verifyStructure()
            let graph = try snapshot.loadGraph()
            let values = try snapshot.loadValueIndexes()
            let manifest = snapshot.manifest
            var graphText =
                graph.map { "graph ok (\($0.rowCount) rows, M \($0.m), \($0.maxLevel + 1) levels)" } ?? "no graph"
            if !values.isEmpty {
                let rows = values.reduce(0) { $0 + $1.entry.rowCount }
                let graphs = values.filter { $0.entry.hasGraph }.count
                graphText += ", \(values.count) value indexes ok (\(rows) rows, \(graphs) with a graph)"
            }
            print(
                "OK \(manifest.snapshotVersion): \(manifest.counts.users) users, \(manifest.counts.items) items, "
                    + "\(manifest.files.count) files checksummed, \(graphText); open \(Self.ms(opened.timeIntervalSince(started))), "
                    + "total \(Self.ms(Date().timeIntervalSince(started)))")
        }
    }

    static func ms(_ seconds: TimeInterval) -> String { String(format: "%.1f ms", seconds * 1000) }
}

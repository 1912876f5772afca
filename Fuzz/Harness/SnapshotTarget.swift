import Foundation
import MappedStorage
import RankingEngine
import RankingModel
import Snapshot
import SnapshotLifecycle

/// `snapshot`: a copy of the fixture snapshot with one file replaced by the input. The first byte
/// picks the file (0: `manifest.json`, k: the k-th entry of the manifest's file list); for a
/// section file the manifest's size and checksum are rewritten to match, as a publisher with a
/// broken builder (or a hostile one) would send them, so the input reaches the structural checks
/// and the graph validation instead of stopping at the checksum. A snapshot that loads must then
/// serve Rank requests without trapping.
enum SnapshotTarget {
    static let manifestData: Data = {
        let path = FuzzFixture.shared.snapshotDirectory + "/" + SnapshotFiles.manifest
        guard let data = FileManager.default.contents(atPath: path) else { fatalError("no fixture manifest") }
        return data
    }()

    static let manifest: SnapshotManifest = {
        do {
            return try SnapshotManifest.parse(manifestData, file: SnapshotFiles.manifest)
        } catch {
            fatalError("fixture manifest: \(error)")
        }
    }()

    static func run(_ bytes: UnsafeRawBufferPointer) {
        let fixture = FuzzFixture.shared
        var cursor = ByteCursor(bytes)
        let selector = Int(cursor.byte()) % (manifest.files.count + 1)
        let content = cursor.rest()
        let directory = fixture.scratchDirectory("snapshot")
        defer { try? FileManager.default.removeItem(atPath: directory) }

        var newManifest = manifest
        let replaced = selector == 0 ? SnapshotFiles.manifest : manifest.files[selector - 1].name
        for entry in manifest.files where entry.name != replaced {
            // Unchanged files are hard links: the loader maps them read-only.
            try? FileManager.default.linkItem(
                atPath: fixture.snapshotDirectory + "/" + entry.name, toPath: directory + "/" + entry.name)
        }
        if selector == 0 {
            _ = FileManager.default.createFile(
                atPath: directory + "/" + SnapshotFiles.manifest, contents: Data(content))
        } else {
            _ = FileManager.default.createFile(atPath: directory + "/" + replaced, contents: Data(content))
            newManifest.files[selector - 1].size = content.count
            newManifest.files[selector - 1].xxh64 = hex16(XXHash64.hash(content))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            guard let data = try? encoder.encode(newManifest) else { return fuzzCheck(false, "manifest encode") }
            _ = FileManager.default.createFile(atPath: directory + "/" + SnapshotFiles.manifest, contents: data)
        }

        let serving: ServingSnapshot
        do throws(ServingSnapshotError) {
            serving = try ServingSnapshot.load(directory: directory, prefault: false)
        } catch {
            return fuzzCheck(!error.description.isEmpty, "snapshot rejected without a message")
        }
        _ = try? serving.snapshot.loadValueIndexes()
        let engine = RankingEngine(registry: SnapshotRegistry(serving))
        for request in probeRequests(serving.snapshot) {
            do throws(RankError) {
                let response = try engine.rank(request, now: 1_700_000_000)
                RankRequestTarget.checkResponse(response, for: request)
            } catch {
                if case .internalError(let message) = error {
                    // A snapshot that passed validation must not make the engine fail.
                    fuzzCheck(false, "INTERNAL on a validated snapshot: \(message)")
                }
            }
        }
    }

    /// A known user, a cold start from recent items, and a filtered DPP request.
    static func probeRequests(_ snapshot: Snapshot) -> [RankRequest] {
        var known = RankRequest()
        known.userID = snapshot.userIds.count > 0 ? snapshot.userIds.id(at: 0) ?? "u" : "u"
        known.k = 5
        var cold = RankRequest()
        cold.userID = "nobody"
        cold.recentItemIDs = (0..<min(2, snapshot.itemIds.count)).compactMap { snapshot.itemIds.id(at: $0) }
        var filtered = known
        filtered.filter.includeCategories = (0..<min(2, snapshot.categories.count)).compactMap {
            snapshot.categories.id(at: $0)
        }
        filtered.filter.includeBrands = (0..<min(1, snapshot.brands.count)).compactMap { snapshot.brands.id(at: $0) }
        filtered.filter.inStockOnly = true
        filtered.filter.tagsAny = (0..<min(2, snapshot.tags.count)).compactMap { snapshot.tags.id(at: $0) }
        filtered.diversity.method = .dpp
        filtered.diversity.maxPerBrand = 1
        return [known, cold, filtered]
    }

    static func hex16(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        let directory = FuzzFixture.shared.snapshotDirectory
        var seeds: [(name: String, bytes: [UInt8])] = [("manifest", [0] + Array(manifestData))]
        for (index, entry) in manifest.files.enumerated() {
            let data = FileManager.default.contents(atPath: directory + "/" + entry.name) ?? Data()
            seeds.append((entry.name, [UInt8(index + 1)] + Array(data)))
        }
        return seeds
    }
}

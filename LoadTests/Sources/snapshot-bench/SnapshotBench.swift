// snapshot-bench — measures what opening and reading a snapshot costs: open time, resident memory
// after open and after prefault, id lookup ns/op (hits and misses), checksum throughput.
//
//   snapshot-bench DIR [--repeat N] [--lookups N]
//
// Numbers are medians of --repeat runs. Run on an otherwise idle machine; record results in
// docs/BENCHMARKS.md with the command line.

import Foundation
import Snapshot

@main
enum SnapshotBench {
    static func main() throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        func option(_ name: String, _ fallback: Int) -> Int {
            guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count,
                let value = Int(arguments[index + 1])
            else { return fallback }
            arguments.removeSubrange(index...(index + 1))
            return value
        }
        let repeats = option("--repeat", 9)
        let lookups = option("--lookups", 1_000_000)
        guard let directory = arguments.first else {
            print("usage: snapshot-bench DIR [--repeat N] [--lookups N]")
            exit(2)
        }

        let rssBefore = residentBytes()
        var openTimes: [Double] = []
        var kept: Snapshot? = nil
        for _ in 0..<repeats {
            let start = now()
            let snapshot = try Snapshot.open(directory: directory)
            openTimes.append(now() - start)
            kept = snapshot
        }
        let snapshot = kept!
        let rssAfterOpen = residentBytes()
        let m = snapshot.manifest
        let mappedBytes = snapshot.fileSizes.reduce(0) { $0 + $1.bytes }
        print(
            "snapshot \(m.snapshotVersion): \(m.counts.users) users, \(m.counts.items) items, dim \(m.dimension) "
                + "\(m.vectorType), \(mb(mappedBytes)) mapped")
        print(
            "open: median \(ms(median(openTimes))) (min \(ms(openTimes.min()!)), max \(ms(openTimes.max()!)), n=\(repeats))"
        )
        print("RSS: before open \(mb(rssBefore)), after open \(mb(rssAfterOpen)) (+\(mb(rssAfterOpen - rssBefore)))")

        // Lookup keys: random existing user ids and the same ids with a suffix (misses). Built before
        // timing; this touches the id heap pages, as serving traffic would.
        var random = SystemRandomNumberGenerator()
        let table = snapshot.userIds.count > 0 ? snapshot.userIds : snapshot.itemIds
        let keyCount = min(lookups, 1_000_000)
        let hits = (0..<keyCount).map { _ in table.id(at: Int.random(in: 0..<table.count, using: &random))! }
        let misses = hits.map { $0 + "#" }
        for (name, keys) in [("hit", hits), ("miss", misses)] {
            var times: [Double] = []
            var found = 0
            for _ in 0..<max(3, repeats / 2) {
                let start = now()
                for key in keys where table.row(for: key) != nil { found += 1 }
                times.append((now() - start) / Double(keys.count))
            }
            print(
                "id lookup (\(name)): median \(String(format: "%.0f", median(times) * 1e9)) ns/op over \(keys.count) keys (found \(found))"
            )
        }
        // The same hits through the byte-level entry point (what a decoder holding UTF-8 bytes calls),
        // keys packed into one buffer so the loop does no String work.
        var packed: [UInt8] = []
        var bounds: [Int] = [0]
        for key in hits {
            packed.append(contentsOf: key.utf8)
            bounds.append(packed.count)
        }
        var byteTimes: [Double] = []
        var byteFound = 0
        packed.withUnsafeBytes { raw in
            for _ in 0..<max(3, repeats / 2) {
                let start = now()
                for index in 0..<hits.count
                where table.row(forUTF8: UnsafeRawBufferPointer(rebasing: raw[bounds[index]..<bounds[index + 1]]))
                    != nil
                {
                    byteFound += 1
                }
                byteTimes.append((now() - start) / Double(hits.count))
            }
        }
        print(
            "id lookup (hit, row(forUTF8:)): median \(String(format: "%.0f", median(byteTimes) * 1e9)) ns/op (found \(byteFound))"
        )
        let rssAfterLookups = residentBytes()

        var start = now()
        let pages = snapshot.prefault()
        let prefaultTime = now() - start
        let rssAfterPrefault = residentBytes()
        print(
            "RSS after lookups \(mb(rssAfterLookups)); prefault \(pages) pages in \(ms(prefaultTime)), RSS after \(mb(rssAfterPrefault))"
        )

        start = now()
        try snapshot.verifyChecksums()
        let checksumTime = now() - start
        print(
            "verifyChecksums: \(ms(checksumTime)) (\(String(format: "%.2f", Double(mappedBytes) / checksumTime / 1e9)) GB/s, resident)"
        )
        start = now()
        try snapshot.verifyStructure()
        print("verifyStructure: \(ms(now() - start))")
        start = now()
        let graph = try snapshot.loadGraph()
        print("loadGraph: \(ms(now() - start))\(graph == nil ? " (no graph)" : "")")
    }

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// Resident set size from /proc/self/statm (pages × page size), including file-backed pages.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        return (fields.count > 1 ? Int(fields[1]) ?? 0 : 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static func ms(_ seconds: Double) -> String { String(format: "%.2f ms", seconds * 1000) }
    static func mb(_ bytes: Int) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
}

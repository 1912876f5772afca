import Foundation
import FuzzHarness
import Testing

/// Every fuzz target on its seeds and on every input committed under `Fuzz/Corpus/<target>/`
/// (the seed corpus, and each input that once crashed a fuzzer, named `regression-*`), as plain
/// tests: a regression traps here exactly as it did under libFuzzer.
@Suite struct CorpusReplayTests {
    static let corpusRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Corpus")

    static func corpus(_ target: FuzzTarget) -> [URL] {
        let directory = corpusRoot.appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().map { directory.appendingPathComponent($0) }
    }

    @Test(arguments: FuzzTarget.allCases)
    func committedCorpusReplaysWithoutTrapping(_ target: FuzzTarget) throws {
        let files = Self.corpus(target)
        #expect(!files.isEmpty, "Fuzz/Corpus/\(target.rawValue) is empty: run `make fuzz-seeds`")
        for file in files {
            target.run(Array(try Data(contentsOf: file)))
        }
    }

    @Test(arguments: FuzzTarget.allCases)
    func seedsRunAndAreCommitted(_ target: FuzzTarget) throws {
        let committed = Set(Self.corpus(target).map(\.lastPathComponent))
        for seed in target.seeds() {
            target.run(seed.bytes)
            #expect(committed.contains("seed-" + seed.name), "seed \(seed.name) of \(target.rawValue) not committed")
        }
    }
}

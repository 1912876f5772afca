import ArgumentParser
import RankingAPI

/// `rankctl related`: one Related call (items similar to seed items) against a running rankd,
/// with every rule option of `rankctl rank`.
struct RelatedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "related",
        abstract: "Ask a running rankd for items similar to seed items and print them.",
        discussion: """
            Takes every option of `rankctl rank` (filters, diversity, boosts, pins, --user, --json);
            --recent must be empty. Seeds are never returned; with --explain each item names the
            seed it is most similar to.
            Examples:
              rankctl related --seed sku-17 --k 8 --explain
              rankctl related --seed sku-17 --seed sku-40 --user u_42 --in-stock --method mmr
            """)

    @Option(name: .customLong("seed"), help: "A seed item id (repeatable; at least one).")
    var seeds: [String] = []

    @OptionGroup var rank: RankCommand

    func validate() throws {
        guard !seeds.isEmpty else { throw ValidationError("--seed: at least one seed item is required") }
    }

    func run() async throws {
        var request = try rank.makeRequest()
        request.seedItemIDs = seeds
        try await rank.call(path: "/ranking.v1.Ranker/Related", message: RelatedCodec.encodeRelatedRequest(request))
    }
}

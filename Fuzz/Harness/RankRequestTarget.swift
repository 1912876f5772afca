import Foundation
import GRPCCore
import NIOCore
import RankingAPI
import RankingEngine
import RankingModel

/// `rank-request`: the bytes of a `RankRequest` message as the server receives them.
enum RankRequestTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        let fixture = FuzzFixture.shared
        let request: RankRequest
        do throws(GRPCStatus) {
            request = try RankCodec.decodeRequest(ByteBuffer(bytes: bytes))
        } catch {
            fuzzCheck(error.code == .invalidArgument, "decode failed with \(error.code), not INVALID_ARGUMENT")
            return
        }
        // Encoding what we decoded and decoding it again must give the same bytes (a Float NaN
        // makes value equality useless, the bytes are exact).
        let once = RankCodec.encodeRequest(request)
        guard let again = try? RankCodec.decodeRequest(once) else {
            return fuzzCheck(false, "a request we encoded does not decode")
        }
        fuzzCheck(RankCodec.encodeRequest(again) == once, "decode ∘ encode is not stable")

        do throws(RankError) {
            let response = try fixture.engine.rank(request, now: 1_700_000_000)
            checkResponse(response, for: request)
        } catch {
            switch error {
            case .invalidArgument(let message):
                fuzzCheck(!message.isEmpty, "INVALID_ARGUMENT without a message")
            case .internalError(let message):
                fuzzCheck(false, "INTERNAL for a client's request: \(message)")
            case .unavailable, .deadlineExceeded:
                break
            }
        }
    }

    /// What every accepted request's response must satisfy, whatever the request asked.
    static func checkResponse(_ response: RankResponse, for request: RankRequest) {
        let limit = request.k > 0 ? request.k : 1000
        fuzzCheck(response.items.count <= limit, "\(response.items.count) items for k \(request.k)")
        var seen = Set<String>()
        for (index, item) in response.items.enumerated() {
            fuzzCheck(seen.insert(item.itemID).inserted, "item \(item.itemID) ranked twice")
            fuzzCheck(item.position == index, "item \(item.itemID) at position \(item.position), index \(index)")
        }
        let excluded = Set(request.filter.excludeItemIDs)
        let pinned = Set(request.pins.map(\.itemID))
        for item in response.items where excluded.contains(item.itemID) && !pinned.contains(item.itemID) {
            fuzzCheck(false, "excluded item \(item.itemID) was ranked")
        }
        _ = RankCodec.encodeResponse(response)
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        let fixture = FuzzFixture.shared
        var requests: [(String, RankRequest)] = []
        var plain = RankRequest()
        plain.userID = fixture.userIDs.first ?? "u_0"
        plain.k = 5
        requests.append(("known-user", plain))

        var cold = RankRequest()
        cold.userID = "nobody"
        cold.recentItemIDs = Array(fixture.itemIDs.prefix(3))
        cold.diversity.method = .dpp
        cold.explain = true
        requests.append(("cold-start-dpp-explain", cold))

        var filtered = plain
        filtered.filter.includeCategories = ["category-0", "category-1"]
        filtered.filter.excludeBrands = ["brand-0-0"]
        filtered.filter.inStockOnly = true
        filtered.filter.minPrice = 1
        filtered.filter.maxPrice = 500
        filtered.filter.tagsAny = ["sale", "new"]
        filtered.filter.excludeItemIDs = Array(fixture.itemIDs.suffix(2))
        filtered.diversity.method = .mmr
        filtered.diversity.tradeoff = 0.5
        filtered.diversity.maxPerCategory = 2
        filtered.diversity.maxPerBrand = 1
        filtered.diversity.spreadWindow = 3
        filtered.diversity.spreadMaxPerCategory = 1
        filtered.candidatePool = 30
        requests.append(("filters-and-caps", filtered))

        var boosted = plain
        boosted.boosts = [
            .init(target: .category("category-2"), multiply: 1.5, add: 0.1),
            .init(target: .tag("eco"), multiply: nil, add: 0.2),
        ]
        boosted.pins = fixture.itemIDs.prefix(2).enumerated().map { .init(itemID: $1, position: $0 * 2) }
        boosted.context = ["surface": "home", "locale": "en"]
        boosted.experimentArm = "dpp"
        boosted.consent = .none
        requests.append(("boosts-pins-context", boosted))

        return requests.map { name, request in (name, Array(buffer: RankCodec.encodeRequest(request))) }
    }
}

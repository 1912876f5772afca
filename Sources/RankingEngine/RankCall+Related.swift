import Foundation
import RankingModel
import Snapshot

/// Related items: the seeds behind the query, and which seed each returned item is nearest to.
/// Everything else (retrieval, filters, live removals, boosts, pins, diversity) is Rank's pipeline.
extension RankCall {
    /// The seeds' rows. A seed the snapshot does not know, or that a live update removed, is
    /// `INVALID_ARGUMENT` naming it.
    func resolveSeeds() throws(RankError) -> [Int32] {
        var rows: [Int32] = []
        rows.reserveCapacity(request.seedItemIDs.count)
        for (index, id) in request.seedItemIDs.enumerated() {
            guard let row = snapshot.itemIds.row(for: id), !live.isRemoved(row) else {
                throw .invalidArgument("seed_item_ids[\(index)]: unknown item '\(id)'")
            }
            rows.append(Int32(row))
        }
        return rows
    }

    /// Names, in each explanation, the seed the item is most similar to (highest cosine).
    mutating func explainNearestSeeds() {
        guard !seedRows.isEmpty, request.explain else { return }
        let dimension = snapshot.dimension
        var seeds = [Float](repeating: 0, count: seedRows.count * dimension)
        var item = [Float](repeating: 0, count: dimension)
        for (index, row) in seedRows.enumerated() {
            item.withUnsafeMutableBufferPointer { snapshot.itemVectors.decode(row: Int(row), into: $0) }
            let norm = Self.norm(item)
            for j in 0..<dimension { seeds[index * dimension + j] = norm > 0 ? item[j] / norm : 0 }
        }
        for position in response.items.indices where response.items[position].explanation != nil {
            guard let row = snapshot.itemIds.row(for: response.items[position].itemID) else { continue }
            item.withUnsafeMutableBufferPointer { snapshot.itemVectors.decode(row: row, into: $0) }
            let norm = Self.norm(item)
            var best = 0
            var bestCosine = -Float.infinity
            for index in seedRows.indices {
                var dot: Float = 0
                for j in 0..<dimension { dot += seeds[index * dimension + j] * item[j] }
                let cosine = norm > 0 ? dot / norm : 0
                if cosine > bestCosine { (best, bestCosine) = (index, cosine) }
            }
            let seed = request.seedItemIDs[best]
            response.items[position].explanation!.similarToItemID = seed
            if response.items[position].explanation!.rule != "pinned" {
                response.items[position].explanation!.reason =
                    "similar to \(seed) (cosine \(String(format: "%.2f", bestCosine)))"
            }
        }
    }
}

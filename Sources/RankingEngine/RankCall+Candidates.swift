import RankingModel
import Snapshot
import VectorIndex

/// Candidate retrieval: the filtered vector search, or popularity when there is no query vector.
extension RankCall {
    func retrieve(filter: ItemFilter, plan: Plan) throws(RankError) {
        let retrieval = FilteredRetrieval(serving: serving, scratch: scratch, pool: plan.pool, ef: plan.efSearch)
        do {
            try retrieval.run(filter: filter)
        } catch {
            throw .internalError("retrieval failed: \(error)")
        }
    }

    /// Cold start, holdout and consent NONE: the most popular items that pass the filter, with
    /// their popularity as relevance.
    func popularCandidates(filter: ItemFilter, pool: Int) {
        let popularity = snapshot.popularity
        let scores = snapshot.attributes.popularity
        scratch.results.removeAll(keepingCapacity: true)
        guard pool > 0 else { return }
        if filter.restrictsCategories {
            // Merge the included categories' own popularity lists instead of scanning everything.
            scratch.popularRows.removeAll(keepingCapacity: true)
            for name in request.filter.includeCategories {
                guard let category = snapshot.categories.row(for: name), category < popularity.categoryCount else {
                    continue
                }
                var taken = 0
                for row in popularity.mostPopular(inCategory: category) where taken < pool {
                    if filter.accepts(Int32(row)) {
                        scratch.popularRows.append((Int32(row), scores[Int(row)]))
                        taken += 1
                    }
                }
            }
            scratch.popularRows.sort {
                $0.popularity != $1.popularity ? $0.popularity > $1.popularity : $0.row < $1.row
            }
            for entry in scratch.popularRows.prefix(pool) {
                scratch.results.append(SearchResult(row: entry.row, score: entry.popularity))
            }
        } else {
            for row in popularity.global.buffer {
                let row = Int32(row)
                if filter.accepts(row) {
                    scratch.results.append(SearchResult(row: row, score: scores[Int(row)]))
                    if scratch.results.count == pool { break }
                }
            }
        }
    }
}

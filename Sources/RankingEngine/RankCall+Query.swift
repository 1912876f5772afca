import Snapshot

/// Query-vector construction: the user, the session, or both blended (docs/ENGINE.md).
extension RankCall {
    /// The user's embedding, the session's (a recency-weighted mean of the recent items), or both
    /// blended: `|u| · ((1−w)·û + w·ŝ)`, so the blend keeps the user vector's scale.
    func buildQuery(userRow: Int?, sessionRows: [Int32], parameters: RankingParameters) {
        let dimension = snapshot.dimension
        scratch.query.removeAll(keepingCapacity: true)
        scratch.query.append(contentsOf: repeatElement(0, count: dimension))
        scratch.vector.removeAll(keepingCapacity: true)
        scratch.vector.append(contentsOf: repeatElement(0, count: dimension))
        guard !sessionRows.isEmpty else {
            scratch.query.withUnsafeMutableBufferPointer { snapshot.userVectors.decode(row: userRow!, into: $0) }
            return
        }
        // Session mean, newest first: weights 1, decay, decay², …
        var weight: Float = 1
        let eventWeights = scratch.sessionWeights
        for (index, row) in sessionRows.enumerated() {
            scratch.vector.withUnsafeMutableBufferPointer { snapshot.itemVectors.decode(row: Int(row), into: $0) }
            let norm = Self.norm(scratch.vector)
            if norm > 0 {
                // Recorded interactions carry their own weight (1 for the request's recent items).
                let scaled = weight * (index < eventWeights.count ? eventWeights[index] : 1)
                for j in 0..<dimension { scratch.query[j] += scaled * scratch.vector[j] / norm }
            }
            weight *= parameters.sessionDecay
        }
        let sessionNorm = Self.norm(scratch.query)
        if sessionNorm > 0 {
            for j in 0..<dimension { scratch.query[j] /= sessionNorm }
        }
        guard let userRow else { return }
        scratch.vector.withUnsafeMutableBufferPointer { snapshot.userVectors.decode(row: userRow, into: $0) }
        let userNorm = Self.norm(scratch.vector)
        guard userNorm > 0 else { return }
        let w = parameters.blendWeight
        for j in 0..<dimension {
            scratch.query[j] = userNorm * ((1 - w) * scratch.vector[j] / userNorm + w * scratch.query[j])
        }
    }

    static func norm(_ vector: [Float]) -> Float {
        var sum: Float = 0
        for value in vector { sum += value * value }
        return sum.squareRoot()
    }
}

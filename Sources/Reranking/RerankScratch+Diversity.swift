/// The diversity state behind MMR and DPP scores: how it is brought up to date for one candidate
/// (lazily) or for all (sliding-window DPP), and how a chosen item joins it.
extension RerankScratch {
    /// Brings candidate `i`'s MMR or full-DPP state up to date with every chosen item and
    /// recomputes its cached score. O((chosen since last refresh) · (d + k)).
    func refresh(_ i: Int) {
        let from = Int(seen[i])
        let chosen = chosenCount
        guard from < chosen, let vectors = vectorBase else { return }
        // Locals: stored properties of a class pay a dynamic exclusivity check per access.
        let (d, parameters, chosenItems) = (dimension, parameters, chosenItems)
        let candidate = vectors + i * d
        switch parameters.kind {
        case .none, .windowedDPP:
            return
        case .mmr:
            var largest = maxSimilarity[i]
            var source = mostSimilar[i]
            for t in from..<chosen {
                let j = chosenItems[t]
                let similarity = VectorKernels.dot(candidate, vectors + Int(j) * d, count: d)
                if similarity > largest {
                    largest = similarity
                    source = j
                }
            }
            maxSimilarity[i] = largest
            mostSimilar[i] = source
            cachedScore[i] = parameters.relevanceWeight * normalized[i] - parameters.diversityWeight * largest
        case .dpp:
            // Chen et al. 2018, Algorithm 1, one row at a time: for each chosen item j (column t),
            // e = (S_ij − ⟨c_j, c_i⟩) / d_j, c_i[t] = e, d²_i −= e².
            let (width, factor, pivots) = (factorWidth, factor, pivots)
            let row = factor.base + i * width
            var r = residual[i]
            for t in from..<chosen {
                let j = Int(chosenItems[t])
                let chosenRow = factor.base + j * width
                var e = VectorKernels.dot(candidate, vectors + j * d, count: d)
                if t > 0 { e -= VectorKernels.dot(chosenRow, row, count: t) }
                e /= pivots[t]
                row[t] = e
                r -= e * e
            }
            residual[i] = r
            cachedScore[i] = parameters.dppScore(relevance: normalized[i], residual: r)
        }
        seen[i] = Int32(chosen)
    }

    /// Full DPP: chosen item `j` (already refreshed) becomes column `chosenCount`; its pivot is
    /// the square root of its residual.
    func appendPivot(chosen j: Int) {
        let t = chosenCount
        let pivot = max(residual[j], MethodParameters.minimumResidual).squareRoot()
        factor[j * factorWidth + t] = pivot
        pivots[t] = pivot
    }

    /// Sliding-window DPP: adds chosen item `j` as a new column for every candidate that can
    /// still be placed (eagerly: residuals must be current for the window to slide), then drops
    /// the oldest column when the window overflows. O(n · (d + w)).
    func extendWindowedFactor(chosen j: Int) {
        guard let vectors = vectorBase, let slot = freeColumns.popLast() else { return }
        let (n, d, width) = (count, dimension, factorWidth)
        let (state, residual, factor) = (state, residual, factor)
        let chosenRow = factor.base + j * width
        let chosenVector = vectors + j * d
        let pivot = max(residual[j], MethodParameters.minimumResidual).squareRoot()
        let inverse = 1 / pivot
        for i in 0..<n {
            let st = state[i]
            guard st == CandidateState.available || st == CandidateState.pinReserved else { continue }
            let row = factor.base + i * width
            // Free slots hold zeros in every row, so the dot over the whole row is ⟨c_j, c_i⟩.
            let e =
                (VectorKernels.dot(vectors + i * d, chosenVector, count: d)
                    - VectorKernels.dot(chosenRow, row, count: width)) * inverse
            row[slot] = e
            residual[i] -= e * e
        }
        chosenRow[slot] = pivot
        columnItem[slot] = Int32(j)
        activeColumns.append(slot)
        if activeColumns.count > parameters.window { dropOldestColumn() }
    }

    /// Removes the oldest item from the conditioning set (Chen et al. 2018, sliding window): the
    /// Givens rotations that re-triangularise the factor without it are applied to every row, and
    /// the rotated-out column's squares go back into the residuals. O(w · n).
    private func dropOldestColumn() {
        let (n, width) = (count, factorWidth)
        let (residual, factor) = (residual, factor)
        let oldest = activeColumns.removeFirst()
        for slot in activeColumns {
            let pivotRow = factor.base + Int(columnItem[slot]) * width
            let a = pivotRow[slot]
            let b = pivotRow[oldest]
            if b == 0 { continue }
            let rho = (a * a + b * b).squareRoot()
            let (cosine, sine) = (a / rho, b / rho)
            for i in 0..<n {
                let row = factor.base + i * width
                let x = row[slot]
                let y = row[oldest]
                row[slot] = cosine * x + sine * y
                row[oldest] = cosine * y - sine * x
            }
            pivotRow[slot] = rho
            pivotRow[oldest] = 0
        }
        for i in 0..<n {
            let row = factor.base + i * width
            residual[i] += row[oldest] * row[oldest]
            row[oldest] = 0
        }
        freeColumns.append(oldest)
    }
}

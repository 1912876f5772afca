/// The sliding-window DPP's eager diversity state: how a chosen item joins it for every candidate
/// and how the oldest one leaves. (The lazy MMR and full-DPP updates are `SelectionState.refresh`.)
extension Reranker {
    /// Sliding-window DPP: adds chosen item `j` as a new column for every candidate that can
    /// still be placed (eagerly: residuals must be current for the window to slide), then drops
    /// the oldest column when the window overflows. O(n · (d + w)).
    func extendWindowedFactor(_ s: SelectionState, chosen j: Int) {
        guard let vectors = s.vectors, let slot = dpp.freeColumns.popLast() else { return }
        let (n, d, width) = (s.count, s.dimension, s.factorWidth)
        let (state, residual, factor) = (s.state, s.residual, s.factor)
        let chosenRow = factor + j * width
        let chosenVector = vectors + j * d
        let pivot = max(residual[j], MethodParameters.minimumResidual).squareRoot()
        let inverse = 1 / pivot
        for i in 0..<n {
            let st = state[i]
            guard st == CandidateState.available || st == CandidateState.pinReserved else { continue }
            let row = factor + i * width
            // Free slots hold zeros in every row, so the dot over the whole row is ⟨c_j, c_i⟩.
            let e =
                (VectorKernels.dot(vectors + i * d, chosenVector, count: d)
                    - VectorKernels.dot(chosenRow, row, count: width)) * inverse
            row[slot] = e
            residual[i] -= e * e
        }
        chosenRow[slot] = pivot
        dpp.columnItem[slot] = Int32(j)
        dpp.activeColumns.append(slot)
        if dpp.activeColumns.count > parameters.window { dropOldestColumn() }
    }

    /// Removes the oldest item from the conditioning set (Chen et al. 2018, sliding window): the
    /// Givens rotations that re-triangularise the factor without it are applied to every row, and
    /// the rotated-out column's squares go back into the residuals. O(w · n).
    private func dropOldestColumn() {
        let (n, width) = (count, factorWidth)
        let (residual, factor, columnItem) = (dpp.residual, dpp.factor, dpp.columnItem)
        let oldest = dpp.activeColumns.removeFirst()
        for slot in dpp.activeColumns {
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
        dpp.freeColumns.append(oldest)
    }
}

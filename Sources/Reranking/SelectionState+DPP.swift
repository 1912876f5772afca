import Glibc

/// The full DPP, evaluated lazily eight candidates at a time.
///
/// A block of eight candidates is brought up to date (`catchUp`: the Cholesky entries and
/// residuals for the items chosen since its last update) only when one of its candidates could
/// still win a position. Its candidates' residuals only shrink as items are chosen, so a stale
/// residual still bounds the score from above. With the tight bound of `pickByBounds`, blocks of
/// candidates far below the winning score are never touched (and their vectors never copied).
extension SelectionState {
    /// Chosen item `j` (up to date) becomes column `t = chosenCount` of the Cholesky factor: its
    /// pivot `d_j` and its factor row are recorded for later updates. O(t).
    mutating func appendColumn(chosen j: Int) {
        let t = chosenCount
        catchUp(block: j >> 3)
        pivots[t] = max(residual[j], MethodParameters.minimumResidual).squareRoot()
        let offset: Int = (j >> 3) &* factorWidth &* 8 &+ (j & 7)
        let lanes = factor + offset
        let row = chosenRows + t &* factorWidth
        for column in 0..<t { row[column] = lanes[column &* 8] }
    }

    /// Brings the eight candidates of `block` up to date with every chosen item (Chen et al. 2018,
    /// Algorithm 1, eight lanes at a time): for each chosen item j since the block's last update
    /// (column t), `e = (S_{·j} − ⟨c_j, c_·⟩) / d_j`, `c_·[t] = e`, `d² −= e²`. O(8 · (chosen
    /// since) · (d + k)) with SIMD8 operations.
    ///
    /// Each entry is computed as a one-candidate refresh would (`VectorKernels.dot8` adds in
    /// `dot`'s order), whenever the block is brought up to date: the explained and plain paths,
    /// which do so at different moments, get the same bits.
    @inline(__always)
    mutating func catchUp(block: Int) {
        var t = Int(blockColumns[block])
        let chosen = chosenCount
        guard t < chosen, let vectors else { return }
        let (d, width) = (dimension, factorWidth)
        let laneVectors = vectorBlocks + block &* d &* 8
        if t < 0 {
            VectorKernels.transpose8(
                rows: vectors + block &* 8 &* d, rowCount: min(8, count &- block &* 8), dimension: d,
                into: laneVectors)
            t = 0
        }
        let lanes = factor + block &* width &* 8
        let residuals = UnsafeMutableRawPointer(residual + block &* 8)
        var r = residuals.loadUnaligned(as: SIMD8<Float>.self)
        while t < chosen {
            let j = Int(chosenItems[t])
            var e = VectorKernels.dot8(lanes: laneVectors, vectors + j &* d, count: d)
            if t > 0 { e -= VectorKernels.dot8(lanes: lanes, chosenRows + t &* width, count: t) }
            e /= SIMD8(repeating: pivots[t])
            UnsafeMutableRawPointer(lanes).storeBytes(of: e, toByteOffset: t &* 32, as: SIMD8<Float>.self)
            r -= e * e
            t &+= 1
        }
        residuals.storeBytes(of: r, as: SIMD8<Float>.self)
        blockColumns[block] = Int32(truncatingIfNeeded: chosen)
    }

    /// Whether the step can use `pickByBounds`: full DPP without explanations (which need the
    /// scan's most relevant and best blocked candidates) and with distinct rows (ties go by row).
    func usesBlockBounds(tracking: Bool) -> Bool {
        !tracking && distinctRows && parameters.kind == .dpp
    }

    /// The same pick as `scan(_:_:tracking: false)` for the full DPP: bounds every candidate's
    /// score at once from its residual (stale residuals only overestimate), then re-scores
    /// candidates in decreasing bound until the best exact score beats every remaining bound.
    /// Placed and capped candidates are retired (`laneWeight` −∞) for the rest of the call,
    /// spread-blocked ones skipped for this step. O(n) SIMD work, plus O(n / 8) per re-scored
    /// candidate, plus the stale blocks brought up to date.
    ///
    /// Stale blocks are brought up to date as they reach the top until one candidate has an exact
    /// score, then, in one pass, every stale block whose bound reaches that score: the winner
    /// scores at least as much, so no other block can hold it, and the blocks need no ordering.
    ///
    /// The bound replaces `log d²` by `log d̂² + u − u²/2 + u³/3`, where d̂² is the residual at the
    /// candidate's last exact score and `u = d²/d̂² − 1` (the cubic is ≥ log(1 + u) for every
    /// u > −1: its derivative minus log's is u³/(1 + u)), plus a margin for rounding. Tight when
    /// the residual changed little since (long lists, whose candidates are re-scored often), and
    /// no division: few candidates besides the winner need a logarithm.
    mutating func pickByBounds(spreadActive: Bool) -> Pick {
        let blocks = paddedCount >> 3
        if !laneWeightReady {
            let fresh = 1 + MethodParameters.jitter
            let (freshLog, freshScale) = (logf(fresh), 1 / fresh)
            for i in 0..<paddedCount {
                let open = i < count && state[i] == CandidateState.available && !capped(i)
                laneWeight[i] = open ? parameters.relevanceWeight * normalized[i] : -.infinity
                // Residuals never exceed 1 + jitter, so this bounds every later logarithm.
                (laneLog[i], laneScale[i]) = (freshLog, freshScale)
            }
            for b in 0..<blocks { boundBlock(b) }
            for b in blocks..<((blocks &+ 7) & ~7) { blockBound[b] = -.infinity }
            laneWeightReady = true
        }
        // Bounds persist across steps: a stale block's bounds stay valid, a block brought up to
        // date is bounded again at once, and the blocks whose lanes this step pops (`hidden`) are
        // bounded again at its end.
        var popped = 0
        defer {
            for p in 0..<popped { boundBlock(Int(hidden[p])) }
        }
        var pick = Pick()
        var bestRow = Int32.max
        var staleLeft = true
        while true {
            let (topBlock, top) = Self.highest(blockBound, count: blocks)
            // Ties with the best score must still be looked at (the lower row wins).
            if top == -.infinity || top < pick.bestScore { break }
            if staleLeft, pick.best >= 0 {
                for b in 0..<blocks where blockBound[b] >= pick.bestScore && Int(blockColumns[b]) != chosenCount {
                    catchUp(block: b)
                    boundBlock(b)
                }
                staleLeft = false
                continue
            }
            if Int(blockColumns[topBlock]) != chosenCount {
                // A stale block's bounds came from old, larger residuals: update it and look again.
                catchUp(block: topBlock)
                boundBlock(topBlock)
                continue
            }
            let lanes = laneBound + topBlock &* 8
            var lane = 0
            while lanes[lane] != top { lane &+= 1 }
            lanes[lane] = -.infinity
            blockBound[topBlock] = Self.largest(UnsafeRawPointer(lanes).loadUnaligned(as: SIMD8<Float>.self))
            hidden[popped] = Int32(truncatingIfNeeded: topBlock)
            popped &+= 1
            let i = topBlock &* 8 &+ lane
            if state[i] != CandidateState.available || capped(i) {
                laneWeight[i] = -.infinity
                continue
            }
            if spreadActive, spreadMark[Int(categorySlot[i])] == spreadEpoch { continue }
            let weighted = parameters.relevanceWeight * normalized[i]
            var score = weighted
            if parameters.diversityWeight > 0 {
                // `dppScore`, keeping the logarithm for later bounds.
                let r = max(residual[i], MethodParameters.minimumResidual)
                let log = logf(r)
                (laneLog[i], laneScale[i]) = (log, 1 / r)
                score = parameters.dppScore(weighted: weighted, flooredResidual: r, log: log)
            }
            let row = rows[i]
            if score > pick.bestScore || (score == pick.bestScore && row < bestRow) {
                (pick.best, pick.bestScore, bestRow) = (i, score, row)
            }
        }
        return pick
    }

    /// Sets the score bounds of `block`'s eight candidates from their (possibly stale) residuals,
    /// and the block's largest bound.
    @inline(__always)
    private func boundBlock(_ block: Int) {
        let offset = block &* 32
        let weight = UnsafeRawPointer(laneWeight).loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
        var bound = weight
        let diversity = parameters.diversityWeight
        if diversity > 0 {
            // As `dppScore`: the residual floored, redundant items penalised.
            let raw = UnsafeRawPointer(residual).loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            let r = raw.replacing(
                with: MethodParameters.minimumResidual, where: raw .< MethodParameters.minimumResidual)
            let base = weight.replacing(
                with: weight - MethodParameters.redundancyPenalty, where: r .< MethodParameters.redundantResidual)
            // log d² = log d̂² + log(d²/d̂²), the ratio ≤ 1 (residuals only shrink).
            let scale = UnsafeRawPointer(laneScale).loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            let known = UnsafeRawPointer(laneLog).loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            let u = r * scale - 1
            let logBound = known + u * (1 + u * (-0.5 + u * (1 / 3 as Float))) + Self.logBoundMargin
            bound = base + diversity * logBound
        }
        UnsafeMutableRawPointer(laneBound).storeBytes(of: bound, toByteOffset: offset, as: SIMD8<Float>.self)
        blockBound[block] = Self.largest(bound)
    }

    /// The index and value of the largest of `values[0 ..< count]`, eight at a time (`values` is
    /// padded with −∞ to a multiple of 8). Some index with the largest value, −∞ when all are.
    @inline(__always)
    static func highest(_ values: UnsafePointer<Float>, count: Int) -> (Int, Float) {
        let raw = UnsafeRawPointer(values)
        var best = SIMD8<Float>(repeating: -.infinity)
        var g = 0
        while g < count {
            let group = raw.loadUnaligned(fromByteOffset: g &* 4, as: SIMD8<Float>.self)
            best = best.replacing(with: group, where: best .< group)
            g &+= 8
        }
        let top = largest(best)
        g = 0
        while g < count {
            let group = raw.loadUnaligned(fromByteOffset: g &* 4, as: SIMD8<Float>.self)
            if any(group .== top) {
                var i = g
                while values[i] != top { i &+= 1 }
                return (i, top)
            }
            g &+= 8
        }
        return (0, top)
    }

    @inline(__always)
    static func largest(_ v: SIMD8<Float>) -> Float {
        // `pointwiseMax` is not specialised into SIMD instructions (it costs a call and a loop).
        let (low, high) = (v.lowHalf, v.highHalf)
        let four = low.replacing(with: high, where: low .< high)
        let (a, b) = (four.lowHalf, four.highHalf)
        let two = a.replacing(with: b, where: a .< b)
        return Swift.max(two[0], two[1])
    }

    /// Added to the logarithm's bound so that float rounding cannot push it below `logf` (where
    /// the bound is close to log, both are small, and their rounding errors far below this).
    static var logBoundMargin: Float { 1e-5 }

    /// Full DPP without explanations: candidate `index` was placed (and charged to the caps).
    /// Retires it, and every candidate of a category or brand whose cap it filled, from the
    /// bounds: retiring them one at a time, as they reach the top, costs a search each. O(n) per
    /// filled cap.
    func retire(placed index: Int) {
        guard laneWeightReady else { return }
        let category = categorySlot[index]
        let brand = brandSlot[index]
        let categoryFull = categoryUsed[Int(category)] >= categoryCap
        let brandFull = brandUsed[Int(brand)] >= brandCap
        guard categoryFull || brandFull else {
            laneWeight[index] = -.infinity
            boundBlock(index >> 3)
            return
        }
        for i in 0..<count where (categoryFull && categorySlot[i] == category) || (brandFull && brandSlot[i] == brand) {
            laneWeight[i] = -.infinity
        }
        laneWeight[index] = -.infinity
        for b in 0..<(paddedCount >> 3) { boundBlock(b) }
    }
}

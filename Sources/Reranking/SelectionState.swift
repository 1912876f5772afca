/// The per-candidate state of one `rerank` call as plain pointer views into `Reranker`'s
/// buffers (which stay put for the whole call), so the loops that run once per candidate and
/// step pay neither the dynamic exclusivity checks of class properties nor array bounds checks.
///
/// Built by `Reranker.rerank` after the buffers are sized; owns no memory.
struct SelectionState {
    let count: Int
    let dimension: Int
    /// Columns of the DPP's Cholesky factor (floats per candidate).
    let factorWidth: Int
    /// `count` rounded up to a multiple of 8: the full DPP updates candidates eight at a time, and
    /// `residual` has this many entries.
    let paddedCount: Int
    let parameters: MethodParameters
    /// `count × dimension` unit vectors (nil only for an empty candidate set).
    let vectors: UnsafePointer<Float>?
    /// Full DPP: the same vectors eight candidates at a time, lane-wise — block `b` holds
    /// `dimension` `SIMD8`s, the m-th one component m of candidates `8b ..< 8b + 8` (zeros past
    /// `count`) — so a block's update needs no horizontal sums. Filled on a block's first use.
    let vectorBlocks: UnsafeMutablePointer<Float>
    /// Full DPP, per block of eight candidates: how many factor columns (chosen items) its lanes
    /// account for, −1 before its `vectorBlocks` entry is filled.
    let blockColumns: UnsafeMutablePointer<Int32>

    // Per candidate.
    let rows: UnsafeMutablePointer<Int32>
    let state: UnsafeMutablePointer<UInt8>
    let normalized: UnsafeMutablePointer<Float>
    /// Dense ids of the candidate's category and brand (see `DenseIdMap`), for the caps and spread.
    let categorySlot: UnsafeMutablePointer<Int32>
    let brandSlot: UnsafeMutablePointer<Int32>
    /// MMR is evaluated lazily: how many chosen items a candidate's state accounts for, and its
    /// score then — an upper bound on its current score, because the penalty only grows as items
    /// are chosen.
    let seen: UnsafeMutablePointer<Int32>
    let cachedScore: UnsafeMutablePointer<Float>
    /// MMR: largest cosine to the chosen items seen so far, and which item it was.
    let maxSimilarity: UnsafeMutablePointer<Float>
    let mostSimilar: UnsafeMutablePointer<Int32>
    /// DPP: residual variance d² given the conditioning items (full DPP: as of the candidate's
    /// block's last update, `blockColumns`; it only shrinks, so a stale one bounds from above).
    let residual: UnsafeMutablePointer<Float>
    /// DPP: the Cholesky factor, `factorWidth` floats per candidate. Full DPP: column `t` belongs to
    /// chosen item `chosenItems[t]`, whose pivot is `pivots[t]`, laid out like `vectorBlocks`
    /// (block b: `factorWidth` `SIMD8`s, the t-th one column t of candidates 8b ..< 8b + 8).
    /// Windowed DPP: row-major (see `extendWindowedFactor`).
    let factor: UnsafeMutablePointer<Float>
    let pivots: UnsafeMutablePointer<Float>
    /// Full DPP: row t (`factorWidth` floats) holds the first t factor entries of chosen item
    /// `chosenItems[t]`, gathered when it is chosen.
    let chosenRows: UnsafeMutablePointer<Float>
    /// Full DPP without explanations (`pickByBounds`), `paddedCount` lanes each: θ·rel of the
    /// candidates that may still be picked (−∞ for the rest), and this step's score bounds; and the
    /// largest bound of each block of eight.
    let laneWeight: UnsafeMutablePointer<Float>
    let laneBound: UnsafeMutablePointer<Float>
    /// `log d̂²` and `1 / d̂²` for the floored residual d̂² each candidate had when last scored
    /// exactly (or 1 + jitter before): `pickByBounds` bounds `log d²` from there.
    let laneLog: UnsafeMutablePointer<Float>
    let laneScale: UnsafeMutablePointer<Float>
    let blockBound: UnsafeMutablePointer<Float>
    /// `laneWeight` is built on first use and rebuilt when released pins make retired candidates
    /// placeable again.
    var laneWeightReady = false
    /// Chosen candidates in list order.
    let chosenItems: UnsafeMutablePointer<Int32>

    // Per category / brand slot.
    let categoryUsed: UnsafeMutablePointer<Int32>
    let brandUsed: UnsafeMutablePointer<Int32>
    /// Equal to `spreadEpoch` when the spread rule forbids the category at the current position.
    let spreadMark: UnsafeMutablePointer<Int32>
    /// The caps (`Int32.max` when absent).
    let categoryCap: Int32
    let brandCap: Int32

    var order: RelevanceOrder
    /// MMR without explanations, from the second step on: bounds in a winner tree
    /// (built on first use, rebuilt when released pins make retired candidates placeable again).
    var tree: BoundTree
    var treeReady = false
    /// The tree breaks ties by row alone, so it needs every row supplied once.
    let distinctRows: Bool
    /// Candidates the spread rule hides from the tree during one step.
    let hidden: UnsafeMutablePointer<Int32>
    var chosenCount = 0
    var spreadEpoch: Int32 = 0
    /// The MMR / DPP score bound of an item from its relevance alone (`relevanceBound` offset).
    let freshOffset: Float

    /// What one scan found: the best eligible candidate and, when tracking for explanations, the
    /// most relevant eligible one and the best one a rule held back.
    struct Pick {
        var best = -1
        var bestScore = -Float.infinity
        var relevant = -1
        var blocked = -1
        var blockedScore = -Float.infinity
        var blockedRule: BlockingRule? = nil
    }

    /// Counts item `index` (`by` = 1) or stops counting it (`by` = −1) against its category's and
    /// brand's caps. O(1).
    @inline(__always)
    func chargeCaps(_ index: Int, by delta: Int32 = 1) {
        categoryUsed[Int(categorySlot[index])] &+= delta
        brandUsed[Int(brandSlot[index])] &+= delta
    }

    /// The highest score a candidate could have given its relevance alone; candidates are
    /// visited in relevance order, so once this loses, every later one loses too.
    @inline(__always)
    func relevanceBound(_ relevance: Float) -> Float {
        switch parameters.kind {
        case .none: return relevance
        case .mmr, .dpp, .windowedDPP: return parameters.relevanceWeight * relevance + freshOffset
        }
    }

    /// An upper bound on candidate `i`'s current score: the cached score for the lazy MMR, and
    /// `log x ≤ x − 1` on the residual for the DPP (a logarithm costs more; a full-DPP residual
    /// not yet brought up to date is larger than the current one, so the bound still holds).
    @inline(__always)
    func upperBound(_ i: Int) -> Float {
        switch parameters.kind {
        case .none: return normalized[i]
        case .mmr:
            // The penalty over an empty list is 0, but a first similarity can be negative:
            // only from the first refresh on does the cached score only fall.
            return seen[i] == 0 ? relevanceBound(normalized[i]) : cachedScore[i]
        case .dpp, .windowedDPP:
            guard parameters.diversityWeight > 0 else { return parameters.relevanceWeight * normalized[i] }
            let r = max(residual[i], MethodParameters.minimumResidual)
            let weighted = parameters.relevanceWeight * normalized[i]
            let base = r < MethodParameters.redundantResidual ? weighted - MethodParameters.redundancyPenalty : weighted
            return base + parameters.diversityWeight * (r - 1)
        }
    }

    /// Candidate `i`'s exact current score.
    ///
    /// `mutating` only so that `self` is passed by reference: a non-mutating call from the
    /// mutating scan copied the whole struct (a `memcpy`) on every call.
    @inline(__always)
    mutating func exactScore(_ i: Int) -> Float {
        switch parameters.kind {
        case .none: return normalized[i]
        case .mmr:
            refresh(i)
            return cachedScore[i]
        case .dpp:
            refresh(i)
            return parameters.dppScore(relevance: normalized[i], residual: residual[i])
        case .windowedDPP:
            return parameters.dppScore(relevance: normalized[i], residual: residual[i])
        }
    }

    /// The eligible candidate with the highest score (ties: lower row), visiting candidates in
    /// relevance order and re-scoring only those whose upper bound can still win. Placed,
    /// excluded, pin-reserved and (without `tracking`) capped candidates are unlinked from the
    /// order as they are met, so no later step walks over them again. `tracking` also finds the
    /// best candidate a rule held back, which explanations report.
    mutating func scan(_ c: CandidateSet, _ rules: RerankRules, tracking: Bool) -> Pick {
        var pick = Pick()
        var bestRow = Int32.max
        var blockedRow = Int32.max
        let spreadActive = rules.spread != nil
        var previous = -1
        var o = order.head
        while true {
            if o == order.sortedCount, !order.extend() { break }
            let i = Int(order.order[o])
            let following = Int(order.next[o])
            guard state[i] == CandidateState.available else {
                // Placed, excluded, pin-only or reserved for a pin: never a free pick again
                // (released pins relink the whole order).
                order.unlink(o, after: previous)
                o = following
                continue
            }
            let floor = tracking ? min(pick.bestScore, pick.blockedScore) : pick.bestScore
            if relevanceBound(normalized[i]) < floor { break }
            let row = rows[i]
            let bound = upperBound(i)
            if !tracking, bound < pick.bestScore || (bound == pick.bestScore && row > bestRow) {
                // Cannot win, whatever the rules say: most visits end here, before the rules
                // are looked at.
                previous = o
                o = following
                continue
            }
            let categoryFull = categoryUsed[Int(categorySlot[i])] >= categoryCap
            let brandFull = brandUsed[Int(brandSlot[i])] >= brandCap
            let spreadBlocked = spreadActive && spreadMark[Int(categorySlot[i])] == spreadEpoch
            if categoryFull || brandFull || spreadBlocked {
                if tracking {
                    if !(bound < pick.blockedScore || (bound == pick.blockedScore && row > blockedRow)) {
                        let s = exactScore(i)
                        if s > pick.blockedScore || (s == pick.blockedScore && row < blockedRow) {
                            let rule: BlockingRule
                            if categoryFull {
                                rule = .categoryCap(category: c.categories[i], limit: Int(categoryCap))
                            } else if brandFull {
                                rule = .brandCap(brand: c.brands[i], limit: Int(brandCap))
                            } else {
                                let spread = rules.spread!
                                rule = .spread(
                                    category: c.categories[i], maxPerWindow: spread.maxPerWindow, window: spread.window)
                            }
                            (pick.blocked, pick.blockedScore, blockedRow, pick.blockedRule) = (i, s, row, rule)
                        }
                    }
                    previous = o
                } else if categoryFull || brandFull {
                    // Caps only fill up within a call (released pins relink the order).
                    order.unlink(o, after: previous)
                } else {
                    previous = o
                }
                o = following
                continue
            }
            if tracking,
                pick.relevant < 0 || (normalized[i] == normalized[pick.relevant] && row < rows[pick.relevant])
            {
                pick.relevant = i
            }
            if !(bound < pick.bestScore || (bound == pick.bestScore && row > bestRow)) {
                let s = exactScore(i)
                if s > pick.bestScore || (s == pick.bestScore && row < bestRow) {
                    (pick.best, pick.bestScore, bestRow) = (i, s, row)
                }
            }
            previous = o
            o = following
        }
        return pick
    }

    /// Whether the lazy step can use the winner tree: MMR without explanations (which need the
    /// scan's most relevant and best blocked candidates), with distinct rows (the tree's
    /// tie-break), and not for the first pick, whose exact scores (penalty 0) exceed the bounds
    /// that hold from the second pick on. The full DPP has its own bounds (`usesBlockBounds`).
    func usesTree(tracking: Bool) -> Bool {
        guard !tracking, distinctRows else { return false }
        switch parameters.kind {
        case .none, .dpp, .windowedDPP: return false
        case .mmr: return chosenCount > 0
        }
    }

    /// Whether a cap forbids candidate `i` (caps only fill up within a call).
    @inline(__always)
    func capped(_ i: Int) -> Bool {
        categoryUsed[Int(categorySlot[i])] >= categoryCap || brandUsed[Int(brandSlot[i])] >= brandCap
    }

    /// The same pick as `scan(_:_:tracking: false)`, from the winner tree: pops the candidate with
    /// the highest bound, re-scores it, and stops when its exact score equals its bound. Placed and
    /// capped candidates are retired (bound −∞); spread-blocked ones are hidden for this step only.
    /// O((re-scored + retired) · log n) per step instead of O(n).
    mutating func pickFromTree(spreadActive: Bool) -> Pick {
        if !treeReady {
            for i in 0..<count {
                let eligible = state[i] == CandidateState.available && !capped(i)
                tree.bound[i] = eligible ? upperBound(i) : -.infinity
            }
            tree.build(count: count)
            treeReady = true
        }
        var pick = Pick()
        var hiddenCount = 0
        while let i = tree.top {
            if state[i] != CandidateState.available || capped(i) {
                tree.setBound(i, -.infinity)
                continue
            }
            if spreadActive, spreadMark[Int(categorySlot[i])] == spreadEpoch {
                hidden[hiddenCount] = Int32(truncatingIfNeeded: i)
                hiddenCount += 1
                tree.setBound(i, -.infinity)
                continue
            }
            let bound = tree.bound[i]
            let score = exactScore(i)
            if score == bound {
                (pick.best, pick.bestScore) = (i, score)
                break
            }
            tree.setBound(i, upperBound(i))
        }
        for h in 0..<hiddenCount {
            let i = Int(hidden[h])
            tree.setBound(i, upperBound(i))
        }
        return pick
    }

    /// Brings candidate `i`'s MMR state up to date with every chosen item and recomputes its
    /// cached score. O((chosen since last refresh) · d). Full DPP: brings `i`'s block of eight
    /// candidates up to date (`catchUp`).
    ///
    /// The result does not depend on when refreshes happen (the scan and the tree refresh at
    /// different moments, and must agree to the bit): the running maximum sees the chosen items
    /// in list order however they are split between calls.
    @inline(__always)
    mutating func refresh(_ i: Int) {
        if parameters.kind == .dpp {
            catchUp(block: i >> 3)
            return
        }
        guard parameters.kind == .mmr else { return }
        let from = Int(seen[i])
        let chosen = chosenCount
        guard from < chosen, let vectors else { return }
        let d = dimension
        let candidate = vectors + i * d
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
        seen[i] = Int32(truncatingIfNeeded: chosen)
    }
}

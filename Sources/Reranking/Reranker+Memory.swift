/// The re-ranker's reusable memory, one group per concern. Each group declares its buffers,
/// sizes them for a call (`reserve`) and frees them (`free`) in one place; `Reranker` owns one of
/// each and frees them in its `deinit`. Buffers only grow, so a steady state allocates nothing.
extension Reranker {
    /// Per candidate, every call: its state, relevance (boosted, normalised), row, cap slots and
    /// the lazily re-scored selection score (see `SelectionState` for what each holds).
    struct CandidateMemory {
        var state = ScratchBuffer<UInt8>(filler: 0)
        var boosted = ScratchBuffer<Float>(filler: 0)
        var normalized = ScratchBuffer<Float>(filler: 0)
        var rows = ScratchBuffer<Int32>(filler: 0)
        var categorySlot = ScratchBuffer<Int32>(filler: 0)
        var brandSlot = ScratchBuffer<Int32>(filler: 0)
        var seen = ScratchBuffer<Int32>(filler: 0)
        var cachedScore = ScratchBuffer<Float>(filler: 0)
        /// The candidates the spread rule hides from the bound tree in a step.
        var hidden = ScratchBuffer<Int32>(filler: 0)

        mutating func reserve(candidates n: Int) {
            state.reserve(n)
            boosted.reserve(n)
            normalized.reserve(n)
            rows.reserve(n)
            categorySlot.reserve(n)
            brandSlot.reserve(n)
            seen.reserve(n)
            cachedScore.reserve(n)
            hidden.reserve(n)
        }

        func free() {
            state.free()
            boosted.free()
            normalized.free()
            rows.free()
            categorySlot.free()
            brandSlot.free()
            seen.free()
            cachedScore.free()
            hidden.free()
        }
    }

    /// The order candidates are visited in: sort keys (a heap during the call), sorted positions
    /// and their live links (`RelevanceOrder`), and the `BoundTree` nodes and bounds.
    struct OrderMemory {
        var sortKeys = ScratchBuffer<UInt64>(filler: 0)
        var order = ScratchBuffer<Int32>(filler: 0)
        var orderNext = ScratchBuffer<Int32>(filler: 0)
        var treeKeys = ScratchBuffer<UInt64>(filler: 0)
        var treeWinner = ScratchBuffer<Int32>(filler: -1)
        var treeBound = ScratchBuffer<Float>(filler: 0)

        mutating func reserve(candidates n: Int) {
            sortKeys.reserve(n)
            order.reserve(n)
            orderNext.reserve(n)
            treeKeys.reserve(2 * BoundTree.leaves(for: n))
            treeWinner.reserve(2 * BoundTree.leaves(for: n))
            treeBound.reserve(n)
        }

        func free() {
            sortKeys.free()
            order.free()
            orderNext.free()
            treeKeys.free()
            treeWinner.free()
            treeBound.free()
        }
    }

    /// MMR: each candidate's largest cosine to a chosen item, and which item that was.
    struct MMRMemory {
        var maxSimilarity = ScratchBuffer<Float>(filler: 0)
        var mostSimilar = ScratchBuffer<Int32>(filler: -1)

        mutating func reserve(candidates n: Int) {
            maxSimilarity.reserve(n)
            mostSimilar.reserve(n)
        }

        func free() {
            maxSimilarity.free()
            mostSimilar.free()
        }
    }

    /// DPP: residuals and the incremental Cholesky factor; for the full method the chosen items'
    /// factor rows, the candidate vectors in blocks of eight (lane-wise) with how many factor
    /// columns each block has, per-lane weights and bounds and each block's best bound; for the
    /// sliding window the column slots in age order and the unused ones (see `SelectionState`).
    struct DPPMemory {
        var residual = ScratchBuffer<Float>(filler: 0)
        var factor = ScratchBuffer<Float>(filler: 0)
        var columnItem = ScratchBuffer<Int32>(filler: -1)
        var pivots = ScratchBuffer<Float>(filler: 1)
        var chosenRows = ScratchBuffer<Float>(filler: 0)
        var vectorBlocks = ScratchBuffer<Float>(filler: 0)
        var blockColumns = ScratchBuffer<Int32>(filler: -1)
        var laneWeight = ScratchBuffer<Float>(filler: 0)
        var laneBound = ScratchBuffer<Float>(filler: 0)
        var laneLog = ScratchBuffer<Float>(filler: 0)
        var laneScale = ScratchBuffer<Float>(filler: 0)
        var blockBound = ScratchBuffer<Float>(filler: 0)
        var activeColumns: [Int] = []
        var freeColumns: [Int] = []

        init(k: Int) {
            activeColumns.reserveCapacity(k + 1)
            freeColumns.reserveCapacity(k + 1)
        }

        /// `columns`: the factor width of the call (0 when it is not a DPP call). The vector
        /// blocks are sized when a full-DPP call starts (`beginDiversity`).
        mutating func reserve(candidates n: Int, columns: Int) {
            let padded = Reranker.padded(n)
            residual.reserve(padded)
            factor.reserve(padded * columns)
            columnItem.reserve(columns)
            pivots.reserve(columns)
            chosenRows.reserve(columns * columns)
            laneWeight.reserve(padded)
            laneBound.reserve(padded)
            laneLog.reserve(padded)
            laneScale.reserve(padded)
            blockBound.reserve(Reranker.padded(padded / 8))
        }

        func free() {
            residual.free()
            factor.free()
            columnItem.free()
            pivots.free()
            chosenRows.free()
            vectorBlocks.free()
            blockColumns.free()
            laneWeight.free()
            laneBound.free()
            laneLog.free()
            laneScale.free()
            blockBound.free()
        }
    }

    /// Rules: the sorted exclusion lists, the id → dense slot maps of rows, categories and brands,
    /// and per category / brand slot how many placed items it has and the spread rule's marks.
    struct RuleMemory {
        var excludedRows: [Int32] = []
        var deniedCategories: [Int32] = []
        var deniedBrands: [Int32] = []
        var rowIds = DenseIdMap()
        var categoryIds = DenseIdMap()
        var brandIds = DenseIdMap()
        var categoryUsed = ScratchBuffer<Int32>(filler: 0)
        var brandUsed = ScratchBuffer<Int32>(filler: 0)
        var spreadMark = ScratchBuffer<Int32>(filler: 0)

        init() {
            excludedRows.reserveCapacity(64)
            deniedCategories.reserveCapacity(16)
            deniedBrands.reserveCapacity(16)
        }

        mutating func reserve(candidates n: Int) {
            categoryUsed.reserve(n)
            brandUsed.reserve(n)
            spreadMark.reserve(n)
        }

        func free() {
            rowIds.free()
            categoryIds.free()
            brandIds.free()
            categoryUsed.free()
            brandUsed.free()
            spreadMark.free()
        }
    }

    /// Per position of the list: the candidate placed or reserved there, what the explanation
    /// needs about the step, the chosen candidates in order, and the pinned positions.
    struct PositionMemory {
        var slots = ScratchBuffer<Int32>(filler: -1)
        var traces = ScratchBuffer<PositionTrace>(filler: PositionTrace())
        var chosenItems = ScratchBuffer<Int32>(filler: -1)
        var pinPositions: [Int] = []

        init() { pinPositions.reserveCapacity(16) }

        mutating func reserve(k: Int) {
            slots.reserve(k)
            traces.reserve(k)
            chosenItems.reserve(k)
        }

        func free() {
            slots.free()
            traces.free()
            chosenItems.free()
        }
    }

    /// `n` rounded up to a multiple of 8 (the full DPP's blocks of candidates).
    static func padded(_ n: Int) -> Int { (n + 7) & ~7 }
}

/// One item of the re-ranked list. Its position is its index in `Reranker.ranked`.
public struct RankedItem: Sendable, Equatable {
    /// Item row in the snapshot.
    public var row: Int32
    /// Index into the `CandidateSet` the call was given.
    public var candidateIndex: Int32
    /// The selection score that won the position (method specific, see `DiversityMethod`);
    /// for pins, the item's normalised relevance.
    public var score: Float
    public var isPinned: Bool
}

/// Why a hard exclusion removed an item.
public enum ExclusionReason: Sendable, Equatable {
    case excludedItem
    case outOfStock
    case deniedCategory(Int32)
    case deniedBrand(Int32)
}

/// A rule that stopped an item from taking a position.
public enum BlockingRule: Sendable, Equatable {
    case categoryCap(category: Int32, limit: Int)
    case brandCap(brand: Int32, limit: Int)
    case spread(category: Int32, maxPerWindow: Int, window: Int)
}

/// A pin that is not in the list, and why.
public struct DroppedPin: Sendable, Equatable {
    public enum Reason: Sendable, Equatable {
        /// The item violates a hard exclusion.
        case excluded(ExclusionReason)
        /// No item with this row was in the `CandidateSet`.
        case itemNotSupplied
        /// `position` is negative or ≥ k.
        case positionOutOfRange
        /// An earlier pin (in `rules.pins` order) already holds this position.
        case positionTaken
        /// An earlier pin already placed this item.
        case duplicateItem
        /// Together with the pins at earlier positions it would break a cap or the spread rule.
        case conflictsWith(BlockingRule)
        /// Too few eligible items to fill the positions before it, so the list ended first.
        case listEndedBeforePosition
    }

    public var pin: Pin
    public var reason: Reason
}

/// Why the list is shorter than `k`.
public enum Shortfall: Sendable, Equatable {
    /// Every eligible candidate is in the list.
    case candidatesExhausted
    /// Eligible candidates remain but caps or the spread rule block all of them at the next position.
    case blockedByRules
}

/// The flags of one call; the list itself is `Reranker.ranked`.
public struct RerankOutcome: Sendable, Equatable {
    /// Items in the list (≤ k).
    public var count: Int
    /// `nil` when the list has k items.
    public var shortfall: Shortfall?
    /// Number of entries in `Reranker.droppedPins`.
    public var droppedPinCount: Int

    /// True when fewer than k items are returned.
    public var isShort: Bool { shortfall != nil }
}

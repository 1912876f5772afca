import CoreMetrics
import Synchronization

/// Per-user short-term event state, bounded in memory: the last 32 impressions and the last 16
/// interactions of each tracked user (``EventSlotLayout``), in a fixed budget of bytes.
///
/// Users are spread over shards by the top bits of their key; each shard is one `Mutex` around an
/// index (`[UInt64: Int32]`, reserved up front so it never rehashes) and a slot array allocated once
/// (its pages become resident as users arrive). A write or a read holds one shard's lock for one
/// hash lookup and one slot copy — a few hundred nanoseconds at most — so a Rank call waits at most
/// that long behind ingestion, and only when both touch the same shard at the same instant.
///
/// **Eviction** is a clock per shard: every write and read sets the user's reference bit; when a new
/// user arrives at a full shard the hand clears set bits until it finds a clear one, at most 64
/// slots, and takes that user's slot (or the 64th, so a lock is never held for a long sweep).
/// Evictions are counted (``evictions``, `rankd_events_evictions_total`).
///
/// State lives in memory only: a restart starts empty (docs/OPERATIONS.md "Events").
///
/// Thread-safe.
public final class UserEventStore: Sendable {
    /// How many users the budget holds (all shards).
    public let capacity: Int
    /// The memory budget this store was given, in bytes.
    public let budgetBytes: Int
    private let shards: [EventShard]
    private let shardShift: UInt64
    private let trackedUsers = Atomic<Int>(0)
    private let evictionCount = Atomic<Int>(0)
    private let metrics = EventStoreMetrics()

    /// Bytes one tracked user costs (slot + index share).
    public static let bytesPerUser = EventSlotLayout.bytes + EventSlotLayout.indexBytes

    /// Creates an empty store.
    ///
    /// - Parameters:
    ///   - budgetBytes: memory for slots and indexes together (at least one user per shard).
    ///   - shardCount: a power of two (default 64): more shards, less contention between writers and readers.
    public init(budgetBytes: Int, shardCount: Int = 64) {
        precondition(shardCount > 0 && shardCount & (shardCount - 1) == 0, "shardCount must be a power of two")
        let perShard = max(1, budgetBytes / Self.bytesPerUser / shardCount)
        self.budgetBytes = budgetBytes
        capacity = perShard * shardCount
        shardShift = UInt64(64 - shardCount.trailingZeroBitCount)
        shards = (0..<shardCount).map { _ in EventShard(capacity: perShard) }
        metrics.budget.record(budgetBytes)
        metrics.capacity.record(capacity)
        metrics.users.record(0)
    }

    /// Users tracked now.
    public var users: Int { trackedUsers.load(ordering: .relaxed) }

    /// Users evicted to make room since the store was created.
    public var evictions: Int { evictionCount.load(ordering: .relaxed) }

    @inline(__always)
    private func shard(_ userKey: UInt64) -> EventShard {
        shards[shardShift == 64 ? 0 : Int(truncatingIfNeeded: userKey >> shardShift)]
    }

    /// Records one event. `time` is Unix seconds; `itemKey` from ``EventKey/item(_:)``.
    public func record(userKey: UInt64, itemKey: UInt64, type: EventType, time: UInt32, weight: Float = 1) {
        let outcome = shard(userKey).state.withLock { state in
            state.record(userKey: userKey, itemKey: itemKey & EventKey.itemMask, type: type, time: time, weight: weight)
        }
        switch outcome {
        case .updated: break
        case .added: trackedUsers.add(1, ordering: .relaxed)
        case .evicted:
            evictionCount.add(1, ordering: .relaxed)
            metrics.evictions.increment()
        }
    }

    /// Publishes the tracked-user gauge (call after a batch, not per event).
    public func publishMetrics() {
        metrics.users.record(users)
    }

    /// Copies `userKey`'s state into `view`; returns whether the user is tracked. Allocates nothing.
    @discardableResult
    public func read(userKey: UInt64, into view: inout UserEventView) -> Bool {
        let found = shard(userKey).state.withLock { state in
            guard let slot = state.touch(userKey) else { return false }
            view.load(from: state.slot(slot))
            return true
        }
        if !found { view.clear() }
        return found
    }

    /// Forgets everything held about the user with this key.
    public func purge(userKey: UInt64) {
        let removed = shard(userKey).state.withLock { $0.remove(userKey) }
        if removed {
            trackedUsers.subtract(1, ordering: .relaxed)
            metrics.purged.increment()
            metrics.users.record(users)
        }
    }

    /// Forgets everything held about `userID`.
    public func purge(userID: String) { purge(userKey: EventKey.user(userID)) }
}

/// One shard: a lock around its index and slots (a class, so the array of shards can hold the
/// non-copyable `Mutex`).
private final class EventShard: Sendable {
    let state: Mutex<ShardState>
    init(capacity: Int) { state = Mutex(ShardState(capacity: capacity)) }
}

/// What recording an event did to the shard.
private enum RecordOutcome { case updated, added, evicted }

/// The index, slots and clock hand of one shard. Only touched under its shard's lock.
private struct ShardState: ~Copyable {
    /// The clock hand looks at most this many slots for one eviction.
    static let maxSweep = 64

    var index: [UInt64: Int32]
    let slots: UnsafeMutablePointer<UInt32>
    let capacity: Int
    /// Slots handed out so far; slots at and above it have never been used.
    var used = 0
    /// Slots freed by purges.
    var free: [Int32] = []
    var hand = 0

    init(capacity: Int) {
        self.capacity = capacity
        index = [:]
        index.reserveCapacity(capacity)
        // Not initialised here: a slot is written in full (its header) before it is ever read, and the
        // pages of slots never used are never touched, so they cost address space only.
        slots = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity * EventSlotLayout.words)
    }

    deinit { slots.deallocate() }

    func slot(_ slot: Int32) -> UnsafeMutablePointer<UInt32> {
        slots + Int(slot) * EventSlotLayout.words
    }

    /// The user's slot with its reference bit set, or nil.
    mutating func touch(_ userKey: UInt64) -> Int32? {
        guard let slot = index[userKey] else { return nil }
        self.slot(slot)[3] |= 1
        return slot
    }

    mutating func record(userKey: UInt64, itemKey: UInt64, type: EventType, time: UInt32, weight: Float)
        -> RecordOutcome
    {
        var outcome = RecordOutcome.updated
        let slot: Int32
        if let found = touch(userKey) {
            slot = found
        } else {
            (slot, outcome) = allocate()
            index[userKey] = slot
            let words = self.slot(slot)
            words[0] = UInt32(truncatingIfNeeded: userKey)
            words[1] = UInt32(truncatingIfNeeded: userKey >> 32)
            words[2] = 0
            words[3] = 1
        }
        let words = self.slot(slot)
        let low = UInt32(truncatingIfNeeded: itemKey)
        let high = UInt32(truncatingIfNeeded: itemKey >> 32)
        var ring = words[2]
        if type == .impression {
            let head = Int(ring & 0xFF)
            let count = Int((ring >> 8) & 0xFF)
            let at = EventSlotLayout.impressionsAt + head * EventSlotLayout.impressionWords
            words[at] = low
            words[at + 1] = high
            words[at + 2] = time
            ring =
                ring & 0xFFFF_0000 | UInt32((head + 1) % EventSlotLayout.impressionCapacity)
                | UInt32(min(count + 1, EventSlotLayout.impressionCapacity)) << 8
        } else {
            let head = Int((ring >> 16) & 0xFF)
            let count = Int(ring >> 24)
            let at = EventSlotLayout.interactionsAt + head * EventSlotLayout.interactionWords
            words[at] = low
            words[at + 1] = high & 0x0FFF_FFFF | UInt32(type.rawValue) << 28
            words[at + 2] = time
            words[at + 3] = weight.bitPattern
            ring =
                ring & 0x0000_FFFF | UInt32((head + 1) % EventSlotLayout.interactionCapacity) << 16
                | UInt32(min(count + 1, EventSlotLayout.interactionCapacity)) << 24
        }
        words[2] = ring
        return outcome
    }

    /// A slot for a new user: a freed one, a never-used one, or the clock's victim.
    private mutating func allocate() -> (Int32, RecordOutcome) {
        if let reused = free.popLast() { return (reused, .added) }
        if used < capacity {
            used += 1
            return (Int32(used - 1), .added)
        }
        var victim = hand
        for _ in 0..<Self.maxSweep {
            let words = slot(Int32(hand))
            victim = hand
            hand = (hand + 1) % capacity
            if words[3] & 1 == 0 { break }
            words[3] &= ~1
        }
        let words = slot(Int32(victim))
        index.removeValue(forKey: UInt64(words[0]) | UInt64(words[1]) << 32)
        return (Int32(victim), .evicted)
    }

    /// Removes the user; returns whether they were tracked.
    mutating func remove(_ userKey: UInt64) -> Bool {
        guard let slot = index.removeValue(forKey: userKey) else { return false }
        let words = self.slot(slot)
        // The slot's events are erased, not just unlinked: a purge leaves nothing of the user in memory.
        words.update(repeating: 0, count: EventSlotLayout.words)
        free.append(slot)
        return true
    }
}

/// What the store records (swift-metrics facades; exported by rankd when metrics are on).
private struct EventStoreMetrics: Sendable {
    let budget = Gauge(label: "rankd_events_budget_bytes")
    let capacity = Gauge(label: "rankd_events_capacity_users")
    let users = Gauge(label: "rankd_events_users")
    let evictions = Counter(label: "rankd_events_evictions_total")
    let purged = Counter(label: "rankd_events_purged_users_total")
}

import Foundation
import MappedStorage
public import RankingModel
public import Snapshot
import Synchronization

/// Live catalogue and user changes on top of the active snapshot, durable across restarts and reloads:
/// item stock, price, tags and removal (`UpdateItems`), user deletion (`DeleteUser`).
///
/// - **Durability**: every change is appended to a checksummed write-ahead log (``OverlayLog``,
///   `ROOT/.live/overlay.wal`) and `fdatasync`ed before its caller is told; a writer thread commits
///   whatever is waiting as one group (one write, one sync), so a burst costs one sync. A restart replays
///   the log; a torn tail is cut off, never half-applied.
/// - **Visibility**: after the sync, the group is applied to every ``OverlayBinding`` (one per loaded
///   snapshot) before completions run, so the next Rank call after an acknowledgement sees it.
/// - **Snapshot time**: each snapshot's binding gets only the changes accepted after the snapshot was
///   built (its manifest's `labels.dataAsOf`, else `createdAt`); ``compact(horizon:)`` drops changes at
///   or before a horizon the store chooses (the oldest of the active and rollback snapshots' times) and
///   rewrites the log.
///
/// Thread-safe. Submissions may come from any thread and never block on the disk: completions are
/// called on the writer thread.
public final class LiveOverlay: Sendable {
    /// The directory of the log (`ROOT/.live`).
    public let directory: String
    private let clock: @Sendable () -> Int64
    private let state: Mutex<State>
    private let queue = JobQueue()
    private let metrics = LiveStateMetrics()
    /// The log, touched only by the writer thread (and by `init` before it starts).
    private let writer: WriterOwned

    private struct State: ~Copyable {
        var items: [String: ItemChange] = [:]
        var removedItems = 0
        var users: [String: Int64] = [:]
        /// Mirrors of the log's size and last sequence number, for `status()`.
        var logBytes = 0
        var lastSequence: UInt64 = 0
        var lastTime: Int64 = 0
        var bindings: [WeakBinding] = []
        var purgers: [any UserStatePurging] = []
    }

    /// What opening found in the log (for the startup log line).
    public struct Recovery: Sendable {
        public var records = 0
        public var droppedBytes = 0
        public var dropReason = ""
    }

    public let recovery: Recovery

    static let logName = "overlay.wal"

    /// Opens (creating if needed) `directory` and replays its log.
    /// - Parameters:
    ///   - clock: Unix milliseconds (tests pass their own).
    ///   - writerNice: the writer thread's nice value. Writing updates is never as urgent as serving
    ///     Rank: at 10 (the admin threads' level) the event loops win the cores during a burst, and
    ///     Rank never waits for the writer anyway.
    /// - Throws: ``LiveStateError`` when the directory or the log cannot be used.
    public init(
        directory: String,
        clock: (@Sendable () -> Int64)? = nil, writerNice: Int32 = 10
    ) throws(LiveStateError) {
        self.directory = directory
        self.clock = clock ?? { Int64(Date().timeIntervalSince1970 * 1000) }
        if FileSystemOps.entry(directory) == nil {
            try storage(directory) { () throws(MappedStorageError) in try FileSystemOps.makeDirectory(directory) }
        }
        let (log, replay) = try OverlayLog.open(path: directory + "/" + Self.logName)
        var state = State()
        for record in replay.records { Self.merge(record, into: &state) }
        state.lastTime = max(state.items.values.map(\.latest).max() ?? 0, state.users.values.max() ?? 0)
        (state.logBytes, state.lastSequence) = (log.size, log.nextSequence - 1)
        self.state = Mutex(state)
        writer = WriterOwned(log)
        recovery = Recovery(
            records: replay.records.count, droppedBytes: replay.droppedBytes, dropReason: replay.dropReason)
        Thread.detachNewThread { [self] in
            // setpriority(2) with PRIO_PROCESS and 0 sets the calling thread's nice value on Linux.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, writerNice)
            writerLoop()
        }
    }

    /// Stops the writer thread once the jobs already submitted are done (tests; rankd's overlay lives as
    /// long as the process).
    public func close() {
        queue.push(.stop)
    }

    // MARK: Bindings

    /// The view of `snapshot` with every change accepted after it was built; it keeps receiving later
    /// changes for as long as it is alive. O(changes in the overlay).
    public func bind(_ snapshot: Snapshot) -> OverlayBinding {
        let binding = OverlayBinding(snapshot: snapshot, builtAt: Self.builtAt(snapshot.manifest))
        state.withLock { state in
            var resolved: [ResolvedChange] = []
            binding.resolve(.items(Array(state.items.values)), into: &resolved)
            binding.resolve(
                .userDeletions(state.users.map { UserDeletion(userID: $0.key, at: $0.value) }), into: &resolved)
            binding.apply(resolved)
            state.bindings.removeAll { $0.binding == nil }
            state.bindings.append(WeakBinding(binding))
        }
        return binding
    }

    /// When a snapshot's data was taken, in Unix milliseconds: the manifest label `dataAsOf` (ISO 8601)
    /// when the publishing job set it, else `createdAt`, else 0 (every change applies).
    public static func builtAt(_ manifest: SnapshotManifest) -> Int64 {
        for text in [manifest.labels["dataAsOf"], manifest.createdAt].compactMap({ $0 }) {
            if let date = try? Date(text, strategy: .iso8601) { return Int64(date.timeIntervalSince1970 * 1000) }
        }
        return 0
    }

    // MARK: Purge hooks

    /// Registers state to purge on every user deletion (see ``UserStatePurging``), and purges every user
    /// already deleted in the log from it.
    public func addPurger(_ purger: any UserStatePurging) {
        let users = state.withLock { state in
            state.purgers.append(purger)
            return Array(state.users.keys)
        }
        for user in users { purger.purgeUser(user) }
    }

    // MARK: Submitting changes

    /// Logs and applies `request`'s changes for the items `snapshot` has; unknown ids are reported, not
    /// applied. `completion` runs on the writer thread once the batch is durable and visible, or with the
    /// error that refused it (`invalidArgument` naming the item and field: a tag the snapshot does not
    /// have; `internalError` when the log cannot be written — nothing of the batch is then applied).
    public func updateItems(
        _ request: UpdateItemsRequest, against snapshot: Snapshot,
        completion: @escaping @Sendable (Result<UpdateItemsResult, LiveStateError>) -> Void
    ) {
        queue.push(.items(request, snapshot, completion))
    }

    /// Logs and applies the deletion of `userID` (whether or not `snapshot` has them), purges their
    /// server-side state, then calls `completion` on the writer thread.
    public func deleteUser(
        _ userID: String, against snapshot: Snapshot?,
        completion: @escaping @Sendable (Result<DeleteUserResult, LiveStateError>) -> Void
    ) {
        queue.push(.user(userID, snapshot, completion))
    }

    /// Drops every change accepted at or before `horizon` (Unix milliseconds) and rewrites the log with
    /// what is left. Runs on the writer thread, between groups; `completion` reports how many bytes the
    /// log has after it.
    public func compact(
        horizon: Int64, completion: @escaping @Sendable (Result<Int, LiveStateError>) -> Void = { _ in }
    ) {
        queue.push(.compact(horizon, completion))
    }

    /// The overlay's size.
    public func status() -> OverlayStatus {
        state.withLock { state in
            var status = OverlayStatus()
            status.items = state.items.count
            status.removedItems = state.removedItems
            status.deletedUsers = state.users.count
            status.logBytes = state.logBytes
            status.sequence = state.lastSequence
            return status
        }
    }

    // MARK: The writer thread

    enum Job: Sendable {
        case items(UpdateItemsRequest, Snapshot, @Sendable (Result<UpdateItemsResult, LiveStateError>) -> Void)
        case user(String, Snapshot?, @Sendable (Result<DeleteUserResult, LiveStateError>) -> Void)
        case compact(Int64, @Sendable (Result<Int, LiveStateError>) -> Void)
        case stop
    }

    /// Takes every waiting job, commits the updates among them as one group, then runs compactions.
    private func writerLoop() {
        var running = true
        while running {
            let jobs = queue.takeAll()
            var group: [(record: OverlayRecord, done: (UInt64) -> Void)] = []
            var compactions: [(Int64, @Sendable (Result<Int, LiveStateError>) -> Void)] = []
            var failures: [(LiveStateError) -> Void] = []
            for job in jobs {
                switch job {
                case .items(let request, let snapshot, let completion):
                    switch prepare(request, snapshot) {
                    case .failure(let error): completion(.failure(error))
                    case .success(let (record, result)):
                        guard let record else {
                            completion(.success(result))
                            continue
                        }
                        let metrics = self.metrics
                        group.append(
                            (
                                record,
                                { sequence in
                                    var result = result
                                    result.sequence = sequence
                                    metrics.itemsApplied.increment(by: result.applied)
                                    metrics.itemsUnknown.increment(by: result.unknownItemIDs.count)
                                    completion(.success(result))
                                }
                            ))
                        failures.append { completion(.failure($0)) }
                    }
                case .user(let userID, let snapshot, let completion):
                    guard !userID.isEmpty, userID.utf8.count <= UpdateItemsRequest.maxNameBytes else {
                        completion(.failure(LiveStateError(.invalidArgument, "user_id: empty or over-long")))
                        continue
                    }
                    let known = snapshot?.userIds.row(for: userID) != nil
                    group.append(
                        (
                            .userDeletions([UserDeletion(userID: userID, at: 0)]),
                            { [metrics] sequence in
                                metrics.usersDeleted.increment()
                                var result = DeleteUserResult()
                                result.knownUser = known
                                result.sequence = sequence
                                completion(.success(result))
                            }
                        ))
                    failures.append { completion(.failure($0)) }
                case .compact(let horizon, let completion):
                    compactions.append((horizon, completion))
                case .stop:
                    running = false
                }
            }
            if !group.isEmpty {
                let started = ContinuousClock.now
                do throws(LiveStateError) {
                    let first = try commit(group.map(\.record))
                    let elapsed = (ContinuousClock.now - started).components
                    metrics.commitSeconds.recordNanoseconds(
                        elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
                    metrics.commits.increment()
                    for (index, entry) in group.enumerated() { entry.done(first + UInt64(index)) }
                } catch {
                    metrics.failedCommits.increment()
                    for fail in failures { fail(error) }
                }
            }
            for (horizon, completion) in compactions {
                completion(Result { () throws(LiveStateError) in try compactNow(horizon: horizon) })
            }
        }
    }

    /// Checks a batch against the snapshot it was sent for and folds it into one change per item.
    private func prepare(
        _ request: UpdateItemsRequest, _ snapshot: Snapshot
    ) -> Result<(OverlayRecord?, UpdateItemsResult), LiveStateError> {
        var result = UpdateItemsResult()
        result.snapshotVersion = snapshot.manifest.snapshotVersion
        var order: [String] = []
        var changes: [String: ItemChange] = [:]
        for (index, item) in request.items.enumerated() {
            guard snapshot.itemIds.row(for: item.itemID) != nil else {
                result.unknownItemIDs.append(item.itemID)
                continue
            }
            for (field, tags) in [("add_tags", item.addTags), ("remove_tags", item.removeTags)] {
                if let unknown = tags.first(where: { snapshot.tags.row(for: $0) == nil }) {
                    return .failure(
                        LiveStateError(
                            .invalidArgument,
                            "items[\(index)] (\(item.itemID.prefix(64))).\(field): tag \"\(unknown.prefix(64))\" is not "
                                + "one of the \(snapshot.tags.count) tags of snapshot \(result.snapshotVersion)"))
                }
            }
            // The time is set at commit; 1 keeps the fields "changed" until then.
            let change = ItemChange(item, at: 1)
            if changes[item.itemID] == nil {
                order.append(item.itemID)
                changes[item.itemID] = change
            } else {
                changes[item.itemID]!.merge(change)
            }
            result.applied += 1
        }
        guard !order.isEmpty else { return .success((nil, result)) }
        return .success((.items(order.map { changes[$0]! }), result))
    }

    /// Stamps, logs, syncs and applies one group; returns the first record's sequence number.
    private func commit(_ records: [OverlayRecord]) throws(LiveStateError) -> UInt64 {
        let log = writer.log
        let time = state.withLock { state in
            state.lastTime = max(state.lastTime, clock())
            return state.lastTime
        }
        let stamped = records.map { (Self.stamp($0, at: time), at: time) }
        let first: UInt64
        do throws(LiveStateError) {
            first = try log.append(stamped)
            try log.sync()
        } catch {
            // Whatever reached the file unsynced must not be replayed after a restart as if it had been
            // acknowledged: cut it off now (a later append would otherwise follow it).
            log.discardUnsynced()
            throw error
        }
        let purgers = state.withLock { state in
            (state.logBytes, state.lastSequence) = (log.size, log.nextSequence - 1)
            for (record, _) in stamped { Self.merge(record, into: &state) }
            state.bindings.removeAll { $0.binding == nil }
            for weak in state.bindings {
                guard let binding = weak.binding else { continue }
                var resolved: [ResolvedChange] = []
                for (record, _) in stamped { binding.resolve(record, into: &resolved) }
                binding.apply(resolved)
            }
            return state.purgers
        }
        for case (.userDeletions(let deletions), _) in stamped {
            for deletion in deletions { for purger in purgers { purger.purgeUser(deletion.userID) } }
        }
        return first
    }

    private func compactNow(horizon: Int64) throws(LiveStateError) -> Int {
        let log = writer.log
        return try state.withLock { (state) throws(LiveStateError) -> Int in
            var items: [ItemChange] = []
            var removed = 0
            for var change in state.items.values where change.compact(olderThanOrAt: horizon) {
                items.append(change)
                if change.removedAt != 0 { removed += 1 }
            }
            items.sort { $0.itemID < $1.itemID }
            let users = state.users.filter { $0.value > horizon }.map { UserDeletion(userID: $0.key, at: $0.value) }
                .sorted { $0.userID < $1.userID }
            var records: [(OverlayRecord, at: Int64)] = []
            for start in stride(from: 0, to: items.count, by: 1000) {
                let chunk = Array(items[start..<min(start + 1000, items.count)])
                records.append((.items(chunk), at: chunk.map(\.latest).max() ?? 0))
            }
            for start in stride(from: 0, to: users.count, by: 1000) {
                let chunk = Array(users[start..<min(start + 1000, users.count)])
                records.append((.userDeletions(chunk), at: chunk.map(\.at).max() ?? 0))
            }
            // Sequence numbers keep counting across compactions, so they identify a change for good.
            let rewritten = try OverlayLog.rewrite(path: log.path, firstSequence: log.nextSequence, records: records)
            writer.log = rewritten
            (state.logBytes, state.lastSequence) = (rewritten.size, rewritten.nextSequence - 1)
            state.items = Dictionary(uniqueKeysWithValues: items.map { ($0.itemID, $0) })
            state.removedItems = removed
            state.users = Dictionary(uniqueKeysWithValues: users.map { ($0.userID, $0.at) })
            // Compaction changes no binding: what it drops is in their snapshots already.
            return rewritten.size
        }
    }

    /// `record` with every change time set to `at`.
    private static func stamp(_ record: OverlayRecord, at time: Int64) -> OverlayRecord {
        switch record {
        case .items(let changes):
            return .items(
                changes.map { change in
                    var stamped = change
                    if stamped.removedAt != 0 { stamped.removedAt = time }
                    if stamped.stockAt != 0 { stamped.stockAt = time }
                    if stamped.priceAt != 0 { stamped.priceAt = time }
                    for tag in stamped.tags.keys { stamped.tags[tag]!.at = time }
                    return stamped
                })
        case .userDeletions(let deletions):
            return .userDeletions(deletions.map { UserDeletion(userID: $0.userID, at: time) })
        }
    }

    private static func merge(_ record: OverlayRecord, into state: inout State) {
        switch record {
        case .items(let changes):
            for change in changes {
                let wasRemoved = (state.items[change.itemID]?.removedAt ?? 0) != 0
                state.items[change.itemID, default: ItemChange(itemID: change.itemID)].merge(change)
                if !wasRemoved && change.removedAt != 0 { state.removedItems += 1 }
            }
        case .userDeletions(let deletions):
            for deletion in deletions {
                state.users[deletion.userID] = max(state.users[deletion.userID] ?? 0, deletion.at)
            }
        }
    }
}

/// The log, owned by the writer thread (`@unchecked Sendable`: no other thread touches it after `init`).
private final class WriterOwned: @unchecked Sendable {
    var log: OverlayLog
    init(_ log: OverlayLog) { self.log = log }
}

/// A binding the overlay keeps feeding for as long as some snapshot holds it.
private struct WeakBinding {
    weak var binding: OverlayBinding?
    init(_ binding: OverlayBinding) { self.binding = binding }
}

/// The writer thread's inbox.
private final class JobQueue: Sendable {
    private let jobs = Mutex<[LiveOverlay.Job]>([])
    private let signal = DispatchSemaphore(value: 0)

    func push(_ job: LiveOverlay.Job) {
        jobs.withLock { $0.append(job) }
        signal.signal()
    }

    /// Blocks until at least one job waits, then takes them all.
    func takeAll() -> [LiveOverlay.Job] {
        while true {
            signal.wait()
            let taken = jobs.withLock { jobs in
                defer { jobs.removeAll(keepingCapacity: true) }
                return jobs
            }
            if !taken.isEmpty { return taken }
        }
    }
}

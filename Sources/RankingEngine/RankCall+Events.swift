import RankingModel
import Snapshot
import UserEvents

/// Why recorded events keep an item or a category out of a call.
enum EventExclusionReason: Equatable {
    /// A frequency cap: `impressions` in the last `window` seconds reached `max`.
    case cap(max: Int, window: Int, impressions: Int)
    /// Bought `secondsAgo` seconds ago, within the request's exclude-purchased window.
    case purchased(secondsAgo: Int64)
}

/// One recorded impression of an item the snapshot has, resolved once per call.
struct ShownItem {
    var row: Int32
    var category: UInt32
    /// Seconds before the call (0 for a timestamp slightly ahead of the server's clock).
    var age: Int64
}

/// Rotation of one recently shown item: relevance keeps the share `keep`.
struct RotationEntry {
    var row: Int32
    var keep: Float
    var impressions: Int32
}

/// The user's recorded events in one call (docs/ENGINE.md "Events"): session history when the request
/// sends no recent items, rotation of recently shown items, frequency caps and exclude-purchased.
/// Everything lands in the call's scratch (no allocation once warm); nothing is read under consent NONE.
extension RankCall {
    /// Reads the user's events into `scratch.eventView` (or clears it: consent NONE, no user, no store),
    /// and empties the per-call event buffers.
    func readEvents(personalised: Bool) {
        scratch.rotation.removeAll(keepingCapacity: true)
        scratch.eventExcludedRows.removeAll(keepingCapacity: true)
        scratch.eventExcludedRowReasons.removeAll(keepingCapacity: true)
        scratch.eventExcludedCategories.removeAll(keepingCapacity: true)
        scratch.eventExcludedCategoryReasons.removeAll(keepingCapacity: true)
        guard personalised, let events, !request.userID.isEmpty else {
            scratch.eventView.clear()
            return
        }
        events.read(userKey: EventKey.user(request.userID), into: &scratch.eventView)
    }

    /// The session rows: the request's recent items, else (unless it opts out) the user's recorded
    /// interactions of the last `eventHistorySeconds`, newest first with their weights. Sets
    /// `response.sessionSource`.
    mutating func resolveSession(personalised: Bool, historySeconds: Int) {
        scratch.sessionRows.removeAll(keepingCapacity: true)
        scratch.sessionWeights.removeAll(keepingCapacity: true)
        guard personalised else {
            response.sessionSource = .none
            return
        }
        if !request.recentItemIDs.isEmpty {
            for id in request.recentItemIDs {
                if let row = snapshot.itemIds.row(for: id), !live.isRemoved(row) {
                    scratch.sessionRows.append(Int32(row))
                    scratch.sessionWeights.append(1)
                } else {
                    response.unknownItemIDs.append(id)
                }
            }
            response.sessionSource = .request
            return
        }
        let view = scratch.eventView
        if !request.ignoreEventHistory {
            for i in 0..<view.interactionCount {
                let event = view.interaction(i)
                guard now - Int64(event.time) < Int64(historySeconds) else { continue }
                guard let row = serving.itemKeys.row(for: event.item), !live.isRemoved(Int(row)) else { continue }
                scratch.sessionRows.append(row)
                scratch.sessionWeights.append(event.weight)
            }
        }
        response.sessionSource = scratch.sessionRows.isEmpty ? .none : .eventHistory
    }

    /// Rotation entries, frequency-capped rows and categories, and purchased rows, from the events read.
    mutating func applyEventRules() {
        let view = scratch.eventView
        scratch.shown.removeAll(keepingCapacity: true)
        guard view.found else { return }
        // Each impression's row and category once (at most 32 lookups), for rotation and every cap.
        let category = snapshot.attributes.category
        for i in 0..<view.impressionCount {
            let shown = view.impression(i)
            guard let row = serving.itemKeys.row(for: shown.item) else { continue }
            scratch.shown.append(
                ShownItem(row: row, category: category[Int(row)], age: max(0, now - Int64(shown.time))))
        }
        let config = serving.config
        let rate = request.rotation?.rate ?? config.rotationRate
        let requestWindow = request.rotation?.windowSeconds ?? 0
        let window = Int64(requestWindow > 0 ? requestWindow : config.rotationWindowSeconds)
        if rate > 0 {
            for shown in scratch.shown where shown.age < window {
                let row = shown.row
                // Linear recovery: an impression just now costs `rate`, one a window ago nothing.
                let keep = 1 - rate * (1 - Float(shown.age) / Float(window))
                if let at = scratch.rotation.firstIndex(where: { $0.row == row }) {
                    scratch.rotation[at].keep *= keep
                    scratch.rotation[at].impressions += 1
                } else {
                    scratch.rotation.append(RotationEntry(row: row, keep: keep, impressions: 1))
                }
            }
            scratch.rotation.sort { $0.row < $1.row }
        }
        for cap in request.frequencyCaps { applyCap(cap) }
        let purchasedWindow = Int64(request.filter.excludePurchasedWithinSeconds)
        if purchasedWindow > 0 {
            for i in 0..<view.interactionCount {
                let event = view.interaction(i)
                let ago = max(0, now - Int64(event.time))
                guard event.type == .purchase, ago < purchasedWindow,
                    let row = serving.itemKeys.row(for: event.item)
                else { continue }
                excludeRow(row, .purchased(secondsAgo: ago))
            }
        }
    }

    private func applyCap(_ cap: RankRequest.FrequencyCap) {
        let window = Int64(cap.windowSeconds)
        let shownItems = scratch.shown
        // At most 32 impressions: counting by pairs is cheaper than any table.
        for shown in shownItems where shown.age < window {
            let row = shown.row
            let value = shown.category
            if cap.scope == .category && value == ItemAttributes.none { continue }
            var count = 0
            for other in shownItems where other.age < window {
                if cap.scope == .item ? other.row == row : other.category == value { count += 1 }
            }
            guard count >= cap.maxImpressions else { continue }
            let reason = EventExclusionReason.cap(
                max: cap.maxImpressions, window: cap.windowSeconds, impressions: count)
            if cap.scope == .item {
                excludeRow(row, reason)
            } else if !scratch.eventExcludedCategories.contains(value) {
                scratch.eventExcludedCategories.append(value)
                scratch.eventExcludedCategoryReasons.append(reason)
            }
        }
    }

    private func excludeRow(_ row: Int32, _ reason: EventExclusionReason) {
        guard !scratch.eventExcludedRows.contains(row) else { return }
        scratch.eventExcludedRows.append(row)
        scratch.eventExcludedRowReasons.append(reason)
    }

    /// The share of relevance rotation leaves `row` (1: not shown recently).
    @inline(__always)
    func rotationEntry(_ row: Int32) -> RotationEntry? {
        let entries = scratch.rotation
        guard !entries.isEmpty else { return nil }
        var low = 0
        var high = entries.count
        while low < high {
            let mid = (low + high) >> 1
            if entries[mid].row < row { low = mid + 1 } else { high = mid }
        }
        return low < entries.count && entries[low].row == row ? entries[low] : nil
    }

    /// `relevance` after rotation: the penalty takes a share of its magnitude, so a negative relevance
    /// falls too.
    @inline(__always)
    func rotated(_ relevance: Float, row: Int32) -> Float {
        guard let entry = rotationEntry(row) else { return relevance }
        return relevance - abs(relevance) * (1 - entry.keep)
    }

    /// Why events keep `row` out, in the API's words, or nil.
    func eventRejection(_ row: Int32) -> String? {
        if let at = scratch.eventExcludedRows.firstIndex(of: row) {
            return describe(scratch.eventExcludedRowReasons[at])
        }
        let value = snapshot.attributes.category[Int(row)]
        if let at = scratch.eventExcludedCategories.firstIndex(of: value) {
            return describe(scratch.eventExcludedCategoryReasons[at]) + " (category)"
        }
        return nil
    }

    func describe(_ reason: EventExclusionReason) -> String {
        switch reason {
        case .cap(let max, let window, let impressions):
            "frequency cap: \(impressions) impressions in \(window) s (max \(max))"
        case .purchased(let ago): "purchased \(ago) s ago"
        }
    }

    /// With explain: what the events kept out, for the response.
    mutating func describeEventExclusions() {
        for (row, reason) in zip(scratch.eventExcludedRows, scratch.eventExcludedRowReasons) {
            response.eventExclusions.append(
                .init(itemID: snapshot.itemIds.id(at: Int(row)) ?? "", reason: describe(reason)))
        }
        for (value, reason) in zip(scratch.eventExcludedCategories, scratch.eventExcludedCategoryReasons) {
            response.eventExclusions.append(.init(category: name(snapshot.categories, value), reason: describe(reason)))
        }
    }
}

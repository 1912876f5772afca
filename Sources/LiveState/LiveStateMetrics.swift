import CoreMetrics

/// What the overlay's writer records (swift-metrics facades; rankd exports them when metrics are on, and they
/// cost nothing otherwise): item changes applied and refused as unknown, user deletions, and each durable group
/// commit with how long its append and `fdatasync` took. Created once; recording is a counter add on the writer
/// thread, never on the Rank path.
struct LiveStateMetrics: Sendable {
    let itemsApplied = Counter(label: "rankd_live_item_updates_total", dimensions: [("result", "applied")])
    let itemsUnknown = Counter(label: "rankd_live_item_updates_total", dimensions: [("result", "unknown_item")])
    let usersDeleted = Counter(label: "rankd_live_user_deletions_total")
    let commits = Counter(label: "rankd_live_commits_total", dimensions: [("result", "ok")])
    let failedCommits = Counter(label: "rankd_live_commits_total", dimensions: [("result", "failed")])
    let commitSeconds = CoreMetrics.Timer(label: "rankd_live_commit_seconds")
}

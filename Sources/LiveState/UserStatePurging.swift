/// Server-side state kept per user outside the snapshot (e.g. recent events, impressions, frequency
/// caps) that must go when the user is deleted.
///
/// ``LiveOverlay`` calls every registered purger for a `DeleteUser` after the deletion is durable and
/// before the call is acknowledged, on the overlay's writer thread, so when the caller hears "deleted"
/// no Rank call can read the user's embedding or their state any more. Purgers must be quick (they delay
/// every later update) and must not call back into the overlay. A purge is also replayed at startup for
/// every deletion in the log, so state rebuilt from elsewhere after a crash is purged again.
public protocol UserStatePurging: AnyObject, Sendable {
    /// Forgets everything held about `userID`.
    func purgeUser(_ userID: String)
}

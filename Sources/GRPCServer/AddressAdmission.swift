import Glibc
import NIOConcurrencyHelpers
import NIOCore

/// Per-client-address admission: how many connections one address may hold open, and how fast it
/// may open new ones (a token bucket per address). Connections cut off for abuse (rapid reset,
/// control-frame floods, slowloris, protocol errors) cost their address extra tokens, so a client
/// that reconnects after every cut-off is soon refused at accept, before it costs an nghttp2
/// session, a TLS handshake or a byte of parsing.
///
/// An address is an IPv4 address or an IPv6 /64 prefix (one host's usual allocation; IPv4-mapped
/// IPv6 addresses count as IPv4). Unix-domain peers are not limited.
///
/// Memory is bounded: an address with no open connection and a full bucket is forgotten when the
/// table is pruned, and past ``maxTrackedIdle`` such entries the oldest state is dropped even if
/// its bucket is not full (that address then starts again with a full bucket). Entries with open
/// connections are bounded by the server's connection limit.
///
/// Thread safety: every method may be called from any thread (one lock; taken once per accept,
/// once per close and once per abusive cut-off, never on the call path).
final class AddressAdmission: Sendable {
    /// The per-address limits, from ``GRPCServerConfiguration``. A zero turns its limit off.
    struct Limits: Sendable {
        var maxOpen: Int
        var burst: Int
        var refillPerSecond: Int
        var abuseCost: Int

        init(_ configuration: GRPCServerConfiguration) {
            maxOpen = configuration.maxConnectionsPerAddress
            burst = configuration.connectionBurstPerAddress
            refillPerSecond = configuration.connectionRatePerAddress
            abuseCost = configuration.abusiveConnectionCost
        }

        var rateLimited: Bool { refillPerSecond > 0 && burst > 0 }
        var enabled: Bool { maxOpen > 0 || rateLimited }
    }

    /// An IPv4 address (`high` = 0, `low` = the address) or an IPv6 /64 prefix (`high` = 1).
    struct Key: Hashable, Sendable {
        let high: UInt64
        let low: UInt64

        init?(_ address: SocketAddress?) {
            switch address {
            case .v4(let v4):
                high = 0
                low = UInt64(UInt32(bigEndian: v4.address.sin_addr.s_addr))
            case .v6(let v6):
                let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
                if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
                    high = 0
                    low = bytes[12..<16].reduce(0) { $0 << 8 | UInt64($1) }
                } else {
                    high = 1
                    low = bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
                }
            default:
                return nil
            }
        }
    }

    /// What ``admit(_:now:)`` decided.
    enum Decision: Equatable, Sendable {
        /// Admitted; call ``release(_:)`` with the key (if any) when the connection closes.
        case admitted(Key?)
        /// The address already holds ``Limits/maxOpen`` connections.
        case refusedOpenLimit
        /// The address's bucket is empty (too many new connections, or recent abuse).
        case refusedRate
    }

    private struct Entry {
        var open = 0
        var tokens: Double
        var updated: NIODeadline
    }

    private struct Table {
        var entries: [Key: Entry] = [:]
        var pruneAt: Int
    }

    let limits: Limits
    /// Addresses kept with no open connection before state is dropped regardless of their bucket.
    let maxTrackedIdle: Int
    private let table: NIOLockedValueBox<Table>

    init(limits: Limits, maxTrackedIdle: Int = 65_536) {
        self.limits = limits
        self.maxTrackedIdle = maxTrackedIdle
        table = NIOLockedValueBox(Table(pruneAt: min(4096, maxTrackedIdle)))
    }

    /// Addresses tracked now (for tests and the bound above).
    var trackedAddresses: Int { table.withLockedValue { $0.entries.count } }

    /// Decides on a connection accepted from `address` at `now`, charging it one token.
    func admit(_ address: SocketAddress?, now: NIODeadline) -> Decision {
        guard limits.enabled, let key = Key(address) else { return .admitted(nil) }
        return table.withLockedValue { table in
            var entry = table.entries[key] ?? Entry(tokens: Double(limits.burst), updated: now)
            refill(&entry, now: now)
            if limits.maxOpen > 0, entry.open >= limits.maxOpen {
                table.entries[key] = entry
                return .refusedOpenLimit
            }
            if limits.rateLimited {
                // A refused attempt costs nothing: a client that keeps knocking gets in at the refill rate.
                guard entry.tokens >= 1 else {
                    table.entries[key] = entry
                    return .refusedRate
                }
                entry.tokens -= 1
            }
            entry.open += 1
            table.entries[key] = entry
            if table.entries.count >= table.pruneAt { prune(&table, now: now) }
            return .admitted(key)
        }
    }

    /// An admitted connection from `key` closed.
    func release(_ key: Key) {
        table.withLockedValue { table in
            table.entries[key]?.open -= 1
        }
    }

    /// A connection from `address` was cut off for abuse at `now`: its address pays
    /// ``Limits/abuseCost`` more tokens (the bucket may go as low as minus the burst, so a
    /// persistent abuser waits up to twice the burst's refill time).
    func penalise(_ address: SocketAddress?, now: NIODeadline) {
        guard limits.rateLimited, limits.abuseCost > 0, let key = Key(address) else { return }
        table.withLockedValue { table in
            guard var entry = table.entries[key] else { return }
            refill(&entry, now: now)
            entry.tokens = max(entry.tokens - Double(limits.abuseCost), -Double(limits.burst))
            table.entries[key] = entry
        }
    }

    private func refill(_ entry: inout Entry, now: NIODeadline) {
        guard limits.rateLimited else { return }
        let elapsed = Double(max((now - entry.updated).nanoseconds, 0)) / 1e9
        entry.tokens = min(Double(limits.burst), entry.tokens + elapsed * Double(limits.refillPerSecond))
        entry.updated = now
    }

    /// Forgets addresses at rest (no open connection, full bucket); if more than `maxTrackedIdle`
    /// addresses without open connections remain, forgets those too. Amortised: the next prune
    /// waits until the table has doubled.
    private func prune(_ table: inout Table, now: NIODeadline) {
        table.entries = table.entries.filter { _, entry in
            var entry = entry
            refill(&entry, now: now)
            return entry.open > 0 || entry.tokens < Double(limits.burst)
        }
        let idle = table.entries.lazy.filter { $0.value.open == 0 }.count
        if idle > maxTrackedIdle {
            table.entries = table.entries.filter { $0.value.open > 0 }
        }
        table.pruneAt = max(min(4096, maxTrackedIdle), table.entries.count * 2)
    }
}

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// How eagerly the event-ingest thread competes with the event loops for the cores
/// (`rankd --event-ingest-priority`).
public enum IngestPriority: String, CaseIterable, Sendable {
    /// Linux `SCHED_IDLE`: the thread runs on cores the loops leave free, and a loop that wakes
    /// preempts it at once. Ingestion slows when Rank traffic saturates the machine (streams are then
    /// throttled by their HTTP/2 windows; unary batches past the pending bound are refused).
    case idle
    /// Nice 10 in the normal class: ingestion gets a smaller share of a busy core, but once running
    /// it keeps the core for a scheduler slice, so a waking loop can wait milliseconds.
    case low
    /// Nice 0: ingestion competes with the loops as an equal.
    case normal
}

/// One OS thread running work items in the order they were submitted, at an ``IngestPriority``.
/// A dedicated thread rather than a dispatch queue: a scheduling class set on a dispatch worker
/// would stay with that pooled thread and slow whatever queue it serves next.
final class IngestThread: @unchecked Sendable {
    private let condition = NSCondition()
    /// Guarded by `condition`.
    private var pending: [@Sendable () -> Void] = []

    init(name: String, priority: IngestPriority) {
        let thread = Thread { [self] in
            // Named for top, perf and /proc (Linux keeps 15 bytes; set from the thread itself, as a
            // new thread otherwise carries its creator's name).
            Thread.current.name = name
            _ = Self.apply(priority)
            run()
        }
        thread.start()
    }

    /// Runs `work` on the thread after everything submitted before it.
    func submit(_ work: @escaping @Sendable () -> Void) {
        condition.lock()
        pending.append(work)
        condition.signal()
        condition.unlock()
    }

    /// Changes the thread's priority (queued behind the work already submitted). Returns, on the
    /// thread, nil or why the system refused (lowering to `normal` after `idle` needs privileges).
    func setPriority(_ priority: IngestPriority, completion: @escaping @Sendable (String?) -> Void) {
        submit { completion(Self.apply(priority)) }
    }

    private func run() -> Never {
        while true {
            condition.lock()
            while pending.isEmpty { condition.wait() }
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            condition.unlock()
            for work in batch { work() }
        }
    }

    /// Sets the calling thread's scheduling class and nice value. On Linux both are per thread
    /// (sched_setscheduler(2) and setpriority(2) with 0 act on the caller).
    static func apply(_ priority: IngestPriority) -> String? {
        #if os(Linux)
            var parameters = sched_param()
            parameters.sched_priority = 0
            let policy: Int32 =
                priority == .idle ? 5 /* SCHED_IDLE, <sched.h> under _GNU_SOURCE */ : Int32(SCHED_OTHER)
            if sched_setscheduler(0, policy, &parameters) != 0 {
                return "sched_setscheduler(\(priority.rawValue)): \(String(cString: strerror(errno)))"
            }
            if priority != .idle {
                let nice: Int32 = priority == .low ? 10 : 0
                if setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice) != 0 {
                    return "setpriority(\(nice)): \(String(cString: strerror(errno)))"
                }
            }
            return nil
        #else
            return priority == .normal ? nil : "thread priorities are only set on Linux"
        #endif
    }
}

import Glibc
import NIOCore
import NIOPosix

/// The listener's own thread (``GRPCServerConfiguration/dedicatedAcceptThread``): one event loop that
/// only accepts connections and applies the per-address limits, at a lower CPU priority
/// (``GRPCServerConfiguration/acceptThreadNice``). Accepting is where a connection flood costs the most
/// (`accept`, the admission decision, the reset of a refused connection, a wake-up per connection):
/// on its own thread that work no longer sits in the queue of a loop serving calls, and at a lower
/// priority it yields the CPU to them when the two compete; what it cannot accept in time waits in
/// the kernel's listen backlog. Accepted connections are served on the server's event loops.
enum AcceptThread {
    /// Starts the accept loop, or returns nil when the configuration shares the serving loops.
    static func start(_ configuration: GRPCServerConfiguration) async throws -> MultiThreadedEventLoopGroup? {
        guard configuration.dedicatedAcceptThread else { return nil }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let nice = Int32(clamping: min(max(configuration.acceptThreadNice, 0), 19))
        if nice > 0 {
            // Linux keeps a nice value per thread, and `who` 0 names the calling thread: the loop's own.
            // Raising one's own nice value needs no privilege, so this does not fail in practice; if it
            // did, the thread would simply keep the process's priority.
            try await group.next().submit {
                _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)
            }.get()
        }
        return group
    }
}

import Glibc

/// A server's connections are open files: at start rankd raises its open-file limit and sizes its
/// descriptor table for them.
public enum OpenFileLimit {
    /// Raises the soft open-file limit to the hard one, as Go's runtime and nginx
    /// (`worker_rlimit_nofile`) do: the usual soft default of 1024 would refuse connections long before
    /// `maxConnections`. Returns the soft limit now in force (nil if it cannot be read).
    public static func raiseToHardLimit() -> Int? {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(resource, &raised) == 0 { limit = raised }
        }
        return limit.rlim_cur >= rlim_t(Int.max) ? Int.max : Int(limit.rlim_cur)
    }

    /// Grows the process's descriptor table to hold `count` descriptors now. The kernel otherwise grows
    /// it by doubling as descriptors are opened, and in a multi-threaded process each growth waits for
    /// an RCU grace period (`synchronize_rcu`, milliseconds) while every thread that opens a descriptor
    /// waits for it: the event loop accepting a connection storm stalled once per doubling, with every
    /// call on that loop behind it. Costs 8 bytes per descriptor (80 KB for 10,000). `count` is capped
    /// at the soft limit.
    public static func reserveDescriptorTable(_ count: Int) {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return }
        let highest = min(count, limit.rlim_cur >= rlim_t(Int32.max) ? Int(Int32.max) : Int(limit.rlim_cur)) - 1
        let source = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard source >= 0 else { return }
        defer { close(source) }
        // Taking the highest descriptor sizes the table for it; closing it keeps the table.
        if highest > source, dup2(source, Int32(highest)) == Int32(highest) { close(Int32(highest)) }
    }

    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
}

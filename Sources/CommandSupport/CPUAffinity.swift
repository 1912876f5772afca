import Foundation

/// The CPUs this process may run on (its scheduler affinity, as `taskset`, `numactl` or systemd's
/// `CPUAffinity=` set it). Default thread counts take the smaller of this and the machine's or
/// cgroup's core count: NIO's `System.coreCount` and Foundation's `activeProcessorCount` read the
/// cgroup limits but not the affinity mask, so a server started on one CPU of a larger machine would
/// otherwise run one busy thread per core it cannot use, each taking turns on its one CPU.
public enum CPUAffinity {
    /// How many CPUs the process may run on, from `/proc/self/status`; nil where that is not readable
    /// (not Linux) or not understood.
    public static func allowedCPUCount() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("Cpus_allowed_list:") {
            return count(cpuList: line.dropFirst("Cpus_allowed_list:".count))
        }
        return nil
    }

    /// `limit` (a core count from elsewhere), lowered to the CPUs this process may run on.
    public static func usableCores(limit: Int) -> Int {
        max(1, min(limit, allowedCPUCount() ?? limit))
    }

    /// Counts the CPUs in a kernel CPU list such as `0-3,8,10-11` (7 CPUs); nil if it is malformed.
    public static func count(cpuList: Substring) -> Int? {
        let parts = cpuList.trimmingCharacters(in: .whitespaces).split(separator: ",", omittingEmptySubsequences: false)
        var total = 0
        for part in parts {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(bounds.count), let low = Int(bounds[0]), let high = Int(bounds[bounds.count - 1]),
                low >= 0, high >= low
            else { return nil }
            total += high - low + 1
        }
        return total > 0 ? total : nil
    }
}

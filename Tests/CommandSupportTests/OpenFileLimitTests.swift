import CommandSupport
import Foundation
import Glibc
import Testing

@Suite struct OpenFileLimitTests {
    @Test func softLimitEndsAtTheHardLimit() throws {
        let soft = try #require(OpenFileLimit.raiseToHardLimit())
        var limit = rlimit()
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
        #expect(limit.rlim_cur == limit.rlim_max)
        #expect(soft >= 1)
    }

    @Test func reservingSizesTheTableAndLeavesNoDescriptorOpen() throws {
        let count = min(4096, try #require(OpenFileLimit.raiseToHardLimit()))
        OpenFileLimit.reserveDescriptorTable(count)
        OpenFileLimit.reserveDescriptorTable(Int.max)  // capped at the limit, not an error
        #expect(try Self.descriptorTableSize() >= count)
        #expect(fcntl(Int32(count - 1), F_GETFD) == -1, "the descriptor that sized the table is closed again")
    }

    /// `FDSize` in /proc/self/status: the slots the kernel's descriptor table has.
    static func descriptorTableSize() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("FDSize:") })
        return try #require(Int(line.dropFirst("FDSize:".count).trimmingCharacters(in: .whitespaces)))
    }
}

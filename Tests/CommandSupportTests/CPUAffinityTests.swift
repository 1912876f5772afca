import CommandSupport
import Testing

@Suite struct CPUAffinityTests {
    @Test func countsKernelCPULists() {
        #expect(CPUAffinity.count(cpuList: "0") == 1)
        #expect(CPUAffinity.count(cpuList: "\t0-1") == 2)
        #expect(CPUAffinity.count(cpuList: "0-3,8,10-11") == 7)
        #expect(CPUAffinity.count(cpuList: " 5 ") == 1)
    }

    @Test func rejectsWhatIsNotACPUList() {
        for text in ["", "-", "3-1", "a", "0-", "-2", "0-1-2", "1,,2"] {
            #expect(CPUAffinity.count(cpuList: Substring(text)) == nil, "\(text)")
        }
    }

    @Test func thisProcessMayRunOnAtLeastOneCPU() throws {
        let allowed = try #require(CPUAffinity.allowedCPUCount())
        #expect(allowed >= 1)
        #expect(CPUAffinity.usableCores(limit: 1) == 1)
        #expect(CPUAffinity.usableCores(limit: 4096) == allowed)
    }
}

import LoadHarness
import Testing

@Suite struct CommandLineParsingTests {
    @Test func durationsAcceptUnits() throws {
        #expect(try DurationText.nanoseconds("30s", option: "--duration") == 30_000_000_000)
        #expect(try DurationText.nanoseconds("500ms", option: "--duration") == 500_000_000)
        #expect(try DurationText.nanoseconds("250us", option: "--p99") == 250_000)
        #expect(try DurationText.nanoseconds("2m", option: "--duration") == 120_000_000_000)
        #expect(try DurationText.nanoseconds("1.5", option: "--duration") == 1_500_000_000)
        #expect(throws: LoadTestError.self) { try DurationText.nanoseconds("soon", option: "--duration") }
        #expect(throws: LoadTestError.self) { try DurationText.nanoseconds("-1s", option: "--duration") }
    }

    @Test func onlyLoopbackTargetsAreLoopback() throws {
        #expect(try TargetAddress(parsing: "127.0.0.1:50051").isLoopback)
        #expect(try TargetAddress(parsing: "127.8.0.3:1").isLoopback)
        #expect(try TargetAddress(parsing: "[::1]:50051").isLoopback)
        #expect(try TargetAddress(parsing: "localhost:50051").isLoopback)
        #expect(try !TargetAddress(parsing: "10.0.0.1:50051").isLoopback)
        #expect(try !TargetAddress(parsing: "127.example.com:50051").isLoopback)
        #expect(try TargetAddress(parsing: "[::1]:9").description == "[::1]:9")
        #expect(throws: LoadTestError.self) { try TargetAddress(parsing: "127.0.0.1") }
        #expect(throws: LoadTestError.self) { try TargetAddress(parsing: "127.0.0.1:0") }
    }
}

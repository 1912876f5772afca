import CommandSupport
import Testing

@Suite struct HostPortTests {
    @Test func parsesIPv4NamesAndBracketedIPv6() throws {
        #expect(try HostPort(parsing: "127.0.0.1:50051") == HostPort(host: "127.0.0.1", port: 50051))
        #expect(try HostPort(parsing: "rankd-0.rankd:50051") == HostPort(host: "rankd-0.rankd", port: 50051))
        #expect(try HostPort(parsing: "[::1]:9") == HostPort(host: "::1", port: 9))
        #expect(try HostPort(parsing: "[::1]:9").description == "[::1]:9")
        #expect(try HostPort(parsing: "localhost:1").description == "localhost:1")
    }

    @Test func portZeroOnlyWhenAllowed() throws {
        #expect(try HostPort(parsing: "127.0.0.1:0", allowPortZero: true).port == 0)
        #expect(throws: HostPortError.self) { try HostPort(parsing: "127.0.0.1:0") }
    }

    @Test func rejectsMissingPartsWithTheExpectedForm() {
        for (text, fragment) in [
            ("127.0.0.1", "expected host:port"), (":50051", "missing host"), ("host:65536", "from 1 to 65535"),
            ("host:http", "from 1 to 65535"), ("[::1]50051", "expected [IPv6]:port"), ("[::1", "expected [IPv6]:port"),
        ] {
            #expect {
                try HostPort(parsing: text)
            } throws: { error in
                "\(error)".contains(fragment)
            }
        }
    }

    @Test func loopbackIsOnly127Slash8LocalhostAndV6Loopback() throws {
        #expect(try HostPort(parsing: "127.8.0.3:1").isLoopback)
        #expect(try HostPort(parsing: "[::1]:1").isLoopback)
        #expect(try HostPort(parsing: "localhost:1").isLoopback)
        #expect(try !HostPort(parsing: "10.0.0.1:1").isLoopback)
        #expect(try !HostPort(parsing: "127.example.com:1").isLoopback)
    }
}

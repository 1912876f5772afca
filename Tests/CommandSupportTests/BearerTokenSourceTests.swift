import CommandSupport
import Foundation
import Testing

@Suite struct BearerTokenSourceTests {
    /// A variable name no other test or environment uses.
    private let variable = "RANKD_TEST_TOKEN_\(UInt32.random(in: 0...UInt32.max))"

    /// A temporary file holding `contents`; the caller removes it.
    private func tokenFile(_ contents: String) throws -> String {
        let path = NSTemporaryDirectory() + "token-" + UUID().uuidString
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func fileWinsOverEnvironmentAndIsTrimmed() throws {
        setenv(variable, "from-env", 1)
        defer { unsetenv(variable) }
        let path = try tokenFile("  s3cret\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try BearerTokenSource.read(file: path, environment: variable, flag: "--token-file") == "s3cret")
    }

    @Test func environmentIsTrimmedAndBlankMeansNone() throws {
        defer { unsetenv(variable) }
        #expect(try BearerTokenSource.read(file: nil, environment: variable, flag: "--f") == nil)
        setenv(variable, " tok \n", 1)
        #expect(try BearerTokenSource.read(file: nil, environment: variable, flag: "--f") == "tok")
        setenv(variable, " \n", 1)
        #expect(try BearerTokenSource.read(file: nil, environment: variable, flag: "--f") == nil)
    }

    @Test func unreadableOrBlankFileIsAnErrorNamingFlagAndFile() throws {
        #expect(throws: BearerTokenSource.ReadError.self) {
            try BearerTokenSource.read(file: "/nonexistent/token", environment: variable, flag: "--token-file")
        }
        let path = try tokenFile(" \n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        do throws(BearerTokenSource.ReadError) {
            _ = try BearerTokenSource.read(file: path, environment: variable, flag: "--admin-token-file")
            Issue.record("a blank token file must be refused")
        } catch {
            #expect(error.description == "--admin-token-file \(path): the file is empty")
        }
    }
}

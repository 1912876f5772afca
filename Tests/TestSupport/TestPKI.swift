import Foundation

/// A throwaway PKI for TLS tests, made by `scripts/test-pki.sh` (the openssl command line) in a new
/// temporary directory: `file("server.crt")`, `file("client.key")`, ... (the script lists them).
/// Shared by every test of a process: made once, on first use.
public final class TestPKI: Sendable {
    /// The directory holding the files.
    public let directory: String

    /// The PKI, made on first use.
    /// - Throws: when openssl or the script fails (its output is in the message).
    public static func shared() throws -> TestPKI {
        try made.get()
    }

    private static let made: Result<TestPKI, TestPKIError> = Result { () throws(TestPKIError) in try TestPKI() }

    private init() throws(TestPKIError) {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent(
                "rankd-pki-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
            )
            .path
        // Tests/TestSupport/TestPKI.swift → the repository root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let process = Process()
        process.executableURL = root.appendingPathComponent("scripts/test-pki.sh")
        process.arguments = [directory]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do {
            try process.run()
        } catch {
            throw TestPKIError(description: "cannot run scripts/test-pki.sh: \(error)")
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestPKIError(description: "scripts/test-pki.sh failed (is openssl installed?): \(text)")
        }
        self.directory = directory
    }

    /// The path of `name` (e.g. `server.crt`) in the PKI directory.
    public func file(_ name: String) -> String {
        directory + "/" + name
    }
}

/// Why the test PKI could not be made.
public struct TestPKIError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

import Foundation

/// Where rankd (which checks a bearer token) and rankctl (which sends one) read it: a file named
/// on the command line, else an environment variable. One reader, so both agree on trimming and
/// on what counts as "no token".
public enum BearerTokenSource {
    /// A token file that cannot be used; the message names the flag and the file.
    public struct ReadError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// The token in `file`, surrounding whitespace (a trailing newline) trimmed; without a file,
    /// the environment variable `environment`, trimmed the same way.
    ///
    /// - Returns: `nil` when no file is given and the variable is unset or blank.
    /// - Throws: ``ReadError`` naming `flag` and the file when it cannot be read or is blank: a
    ///   named file is never silently ignored.
    public static func read(file: String?, environment: String, flag: String) throws(ReadError) -> String? {
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ReadError(description: "\(flag) \(file): cannot read the file")
            }
            let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw ReadError(description: "\(flag) \(file): the file is empty") }
            return token
        }
        let token = ProcessInfo.processInfo.environment[environment]?.trimmingCharacters(in: .whitespacesAndNewlines)
        return token?.isEmpty == false ? token : nil
    }
}

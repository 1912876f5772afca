import ArgumentParser
import CommandSupport
import Foundation
import RankingEngine
import RankingModel
import SnapshotLifecycle

/// `rankctl rank-batch`: ranks every user in a file against a snapshot directory, offline (no
/// server), on all cores, into JSONL — a campaign send. Resumable: results go out in whole lines,
/// each chunk in one `write`; a rerun after an interruption (even `kill -9`) drops a torn last line,
/// skips every user that already has a line, and ranks only the rest, so no user is ranked twice
/// or skipped.
struct RankBatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rank-batch",
        abstract: "Rank many users offline from a snapshot into JSONL (resumable).",
        discussion: """
            One output line per user: {"user_id", "strategy", "snapshot_version", "items": [{"item_id",
            "score"}, …]} or {"user_id", "error"}. Lines come in completion order, not input order.
            The rules file is a Rank request in the protobuf JSON mapping, e.g.
              {"k": 20, "diversity": {"method": "DIVERSITY_METHOD_MMR", "tradeoff": 0.7},
               "filter": {"in_stock_only": true}}
            Its user_id must be empty. Live updates are not applied (they live in the server's
            snapshot root, not in the snapshot directory).
            Example:
              rankctl rank-batch --snapshot var/snap --users users.txt --rules rules.json --out results.jsonl
            """)

    @Option(help: "Snapshot directory (as built by `rankctl build`).")
    var snapshot: String

    @Option(help: "Users to rank, one id per line (duplicates are ranked once).")
    var users: String

    @Option(help: "Output JSONL; an existing file is resumed, not overwritten.")
    var out: String

    @Option(help: "Rules: a Rank request as JSON (default: the snapshot's defaults).")
    var rules: String?

    @Option(help: "Worker threads (default: every core this process may run on).")
    var threads = CPUAffinity.usableCores(limit: ProcessInfo.processInfo.activeProcessorCount)

    @Option(help: "Users per chunk (one write per chunk).")
    var chunk = 256

    @Flag(help: "No progress bar on stderr.")
    var quiet = false

    @Flag(help: "Skip the snapshot's checksum pass (it was verified when built or published).")
    var skipChecksums = false

    func run() throws {
        guard threads > 0, chunk > 0 else { throw ValidationError("--threads and --chunk must be at least 1") }
        let template =
            try rules.map { try RulesJSON.parse(try Data(contentsOf: URL(fileURLWithPath: $0))) } ?? RankRequest()
        guard template.userID.isEmpty else {
            throw ValidationError("rules.user_id: must be empty (--users names them)")
        }
        let all = try Self.readUsers(users)
        let done = try BatchOutput.resume(out)
        let pending = all.filter { !done.contains($0) }
        let serving: ServingSnapshot
        do {
            serving = try ServingSnapshot.load(directory: snapshot, verifyChecksums: !skipChecksums)
        } catch {
            throw CommandFailure("\(error)")
        }
        let engine = RankingEngine(registry: SnapshotRegistry(serving))
        let output = try BatchOutput(path: out)
        let progress = Progress(total: all.count, alreadyDone: all.count - pending.count, enabled: !quiet)
        let chunks = stride(from: 0, to: pending.count, by: chunk).map { $0..<min($0 + chunk, pending.count) }
        let next = Mutex(0)
        let failure = Mutex<String?>(nil)
        progress.start()
        let rankingStarted = ContinuousClock.now
        DispatchQueue.concurrentPerform(iterations: min(threads, max(chunks.count, 1))) { _ in
            while true {
                let index = next.withLock { (value: inout Int) -> Int in
                    defer { value += 1 }
                    return value
                }
                guard index < chunks.count, failure.withLock({ $0 == nil }) else { return }
                var text = ""
                for user in pending[chunks[index]] {
                    var request = template
                    request.userID = user
                    do throws(RankError) {
                        BatchOutput.appendLine(for: user, try engine.rank(request), to: &text)
                    } catch {
                        BatchOutput.appendError(for: user, error, to: &text)
                    }
                }
                do {
                    try output.write(text)
                } catch {
                    failure.withLock { $0 = "\(out): \(error)" }
                    return
                }
                progress.add(chunks[index].count)
            }
        }
        progress.finish()
        let elapsed = ContinuousClock.now - rankingStarted
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        if let message = failure.withLock({ $0 }) { throw CommandFailure(message) }
        if !quiet {
            FileHandle.standardError.write(
                Data(
                    String(
                        format: "ranked %d users in %.1f s (%.0f users/s; %d already in %@)\n", pending.count, seconds,
                        seconds > 0 ? Double(pending.count) / seconds : 0, all.count - pending.count, out
                    ).utf8))
        }
    }

    /// The user ids in `path`, first occurrence of each, blank lines skipped.
    static func readUsers(_ path: String) throws -> [String] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var seen = Set<String>()
        var users: [String] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let id = line.trimmingCharacters(in: .whitespaces)
            if !id.isEmpty && seen.insert(id).inserted { users.append(id) }
        }
        return users
    }
}

/// A value behind a lock (rankctl's own small helper; the workers share only counters).
final class Mutex<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// The JSONL results file: resumption, line formatting, and whole-chunk appends.
final class BatchOutput: @unchecked Sendable {
    private let fd: Int32
    private let lock = NSLock()

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CommandFailure("\(path): \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd) }

    /// Appends `text` (whole lines) in one locked run of `write`s, so chunks never interleave.
    func write(_ text: String) throws {
        var bytes = Array(text.utf8)
        lock.lock()
        defer { lock.unlock() }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes {
                Foundation.write(fd, $0.baseAddress! + offset, $0.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw CommandFailure(String(cString: strerror(errno)))
            }
            offset += written
        }
        bytes.removeAll()
    }

    /// The users already in `path`. A torn last line (the run was killed mid-write) is cut off,
    /// so its user is ranked again, once.
    static func resume(_ path: String) throws -> Set<String> {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let complete = (data.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 }) ?? 0
        if complete < data.count {
            guard truncate(path, off_t(complete)) == 0 else {
                throw CommandFailure("\(path): cannot cut the torn last line: \(String(cString: strerror(errno)))")
            }
        }
        var done = Set<String>()
        for line in data[..<complete].split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                let user = object["user_id"] as? String
            else {
                throw CommandFailure("\(path): a line that is not a rank-batch result; refusing to resume into it")
            }
            done.insert(user)
        }
        return done
    }

    static func appendLine(for user: String, _ response: RankResponse, to text: inout String) {
        text += "{\"user_id\":"
        appendQuoted(user, to: &text)
        text += ",\"strategy\":\"\(response.strategy.rawValue)\",\"snapshot_version\":"
        appendQuoted(response.snapshotVersion, to: &text)
        text += ",\"items\":["
        for (index, item) in response.items.enumerated() {
            if index > 0 { text += "," }
            text += "{\"item_id\":"
            appendQuoted(item.itemID, to: &text)
            text += ",\"score\":\(item.score.isFinite ? "\(item.score)" : "0")}"
        }
        text += "]}\n"
    }

    static func appendError(for user: String, _ error: RankError, to text: inout String) {
        text += "{\"user_id\":"
        appendQuoted(user, to: &text)
        text += ",\"error\":"
        appendQuoted(error.description, to: &text)
        text += "}\n"
    }

    /// A JSON string literal.
    static func appendQuoted(_ value: String, to text: inout String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20: text += String(format: "\\u%04x", scalar.value)
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}

/// A progress bar with rate and ETA on stderr, redrawn twice a second.
final class Progress: @unchecked Sendable {
    private let total: Int
    private let alreadyDone: Int
    private let enabled: Bool
    private let done = Mutex(0)
    private let started = ContinuousClock.now
    private var timer: (any DispatchSourceTimer)?

    init(total: Int, alreadyDone: Int, enabled: Bool) {
        self.total = total
        self.alreadyDone = alreadyDone
        self.enabled = enabled
    }

    func add(_ count: Int) { done.withLock { $0 += count } }

    func start() {
        guard enabled else { return }
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now(), repeating: .milliseconds(500))
        timer.setEventHandler { [self] in draw() }
        timer.resume()
        self.timer = timer
    }

    func finish() {
        guard enabled else { return }
        timer?.cancel()
        draw()
        FileHandle.standardError.write(Data("\n".utf8))
    }

    private func draw() {
        let ranked = done.withLock { $0 }
        let complete = alreadyDone + ranked
        let seconds =
            Double((ContinuousClock.now - started).components.seconds)
            + Double((ContinuousClock.now - started).components.attoseconds) / 1e18
        let rate = seconds > 0 ? Double(ranked) / seconds : 0
        let fraction = total > 0 ? Double(complete) / Double(total) : 1
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let eta = rate > 0 ? Int(Double(total - complete) / rate) : 0
        let line = String(
            format: "\r[%@] %d/%d %5.1f%%  %.0f users/s  ETA %d:%02d:%02d ", bar, complete, total, fraction * 100,
            rate, eta / 3600, eta / 60 % 60, eta % 60)
        FileHandle.standardError.write(Data(line.utf8))
    }
}

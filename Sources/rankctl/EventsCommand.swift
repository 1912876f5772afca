import ArgumentParser
import CommandSupport
import Foundation
import GRPCClient
import GRPCCore
import NIOCore
import NIOPosix
import RankingAPI

/// `rankctl events FILE.jsonl`: replays an event log into rankd over `StreamEvents`.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Replay a JSON Lines event log into rankd (RecordEvents over one client stream).",
        discussion: """
            FILE has one JSON object per line: {"user_id": "u_42", "item_id": "sku-7", "type": "impression", \
            "timestamp_ms": 1733300000000, "weight": 1.0, "consent": "full"}. "type" is impression, click, \
            add_to_cart, purchase or custom; only user_id, item_id and type are required (timestamp_ms 0 or \
            absent: when rankd receives it). Lines are sent in batches of --batch-size as one StreamEvents \
            call; a refused batch ends the call with the message and event named (earlier batches stay \
            recorded). Prints what rankd recorded and the rate.
            """)

    @Argument(help: "JSON Lines file of events ('-' reads standard input).")
    var file: String

    @Option(help: "rankd address, host:port.")
    var server = "127.0.0.1:50051"

    @Option(help: "Events per stream message (1...10000).")
    var batchSize = 1000

    @Option(help: "File holding the Rank bearer token, if rankd wants one (default: RANKD_RANK_TOKEN).")
    var tokenFile: String?

    @Option(help: "Deadline in seconds.")
    var timeout = 600

    @OptionGroup(title: "TLS")
    var tls: TLSClientFlags

    func run() async throws {
        guard (1...RecordEventsRequest.maxEvents).contains(batchSize) else {
            throw ValidationError("--batch-size must be in 1...\(RecordEventsRequest.maxEvents)")
        }
        let events = try Self.read(file)
        guard !events.isEmpty else { throw ValidationError("\(file): no events") }
        let token: String?
        do throws(BearerTokenSource.ReadError) {
            token = try BearerTokenSource.read(file: tokenFile, environment: "RANKD_RANK_TOKEN", flag: "--token-file")
        } catch {
            throw ValidationError(error.description)
        }
        let (host, port) = try parseAddress(server)
        let connection: GRPCClientConnection
        do {
            connection = try await GRPCClientConnection.connect(
                host: host, port: port, group: MultiThreadedEventLoopGroup.singleton, tls: try tls.credentials())
        } catch {
            throw CommandFailure("cannot connect to \(server): \(error)")
        }
        let started = ContinuousClock.now
        let call = connection.startCall(
            path: "/ranking.v1.Ranker/StreamEvents", metadata: token.map { [("authorization", "Bearer \($0)")] } ?? [],
            timeout: .seconds(Int64(timeout)))
        for start in stride(from: 0, to: events.count, by: batchSize) {
            let batch = RecordEventsRequest(events: Array(events[start..<min(start + batchSize, events.count)]))
            call.send(EventCodec.encodeRequest(batch))
        }
        call.finishRequest()
        let result = try await call.result.get()
        let elapsed = ContinuousClock.now - started
        await connection.close()
        let recorded: RecordEventsResult
        do {
            recorded = try EventCodec.decodeResponse(try result.unaryResponse())
        } catch {
            throw CommandFailure("\(server): \(error)")
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(
            "sent \(events.count) events in \((events.count + batchSize - 1) / batchSize) batches: recorded \(recorded.recorded), unknown items \(recorded.unknownItems), no consent \(recorded.skippedNoConsent) · \(String(format: "%.3f", seconds)) s, \(Int(Double(events.count) / max(seconds, 1e-9))) events/s"
        )
    }

    private struct Line: Decodable {
        var user_id: String
        var item_id: String
        var type: String
        var timestamp_ms: Int64?
        var weight: Float?
        var consent: String?
    }

    /// Parses the log; a bad line is named by file and line number.
    static func read(_ path: String) throws -> [RecordedEvent] {
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw ValidationError("\(path): cannot read")
            }
            data = contents
        }
        let decoder = JSONDecoder()
        var events: [RecordedEvent] = []
        for (index, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
            let place = "\(path):\(index + 1)"
            guard !line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) else { continue }
            let parsed: Line
            do {
                parsed = try decoder.decode(Line.self, from: Data(line))
            } catch let DecodingError.keyNotFound(key, _) {
                throw ValidationError("\(place): \(key.stringValue): required")
            } catch {
                throw ValidationError("\(place): not an event object (\(error))")
            }
            let kind: RecordedEvent.Kind
            switch parsed.type {
            case "impression": kind = .impression
            case "click": kind = .click
            case "add_to_cart": kind = .addToCart
            case "purchase": kind = .purchase
            case "custom": kind = .custom
            default:
                throw ValidationError(
                    "\(place): type '\(parsed.type)': expected impression, click, add_to_cart, purchase or custom")
            }
            let consent: RankRequest.Consent
            switch parsed.consent ?? "full" {
            case "full": consent = .full
            case "none": consent = .none
            default: throw ValidationError("\(place): consent '\(parsed.consent ?? "")': expected full or none")
            }
            events.append(
                RecordedEvent(
                    userID: parsed.user_id, itemID: parsed.item_id, kind: kind,
                    timestampMilliseconds: parsed.timestamp_ms ?? 0, weight: parsed.weight, consent: consent))
        }
        return events
    }
}

public import GRPCClient
public import GRPCCore
import NIOConcurrencyHelpers
public import NIOCore

/// Makes a snapshot version active on the server under test. The load harness only needs this
/// one operation, so the reload scenario can be driven by the admin RPC, by a test double, or
/// later by anything else that switches versions.
public protocol SnapshotActivator: Sendable {
    /// Activates `version`; returns the final status (never throws: failures are reported).
    func activate(version: String) async -> GRPCStatus
}

/// Activates through `ranking.v1.SnapshotAdmin/Activate` (Protos/ranking/v1/admin.proto) with
/// `authorization: Bearer <token>`.
public struct AdminRPCActivator: SnapshotActivator {
    public static let path = "/ranking.v1.SnapshotAdmin/Activate"
    private let connection: GRPCClientConnection
    private let token: String?
    private let timeout: TimeAmount

    public init(connection: GRPCClientConnection, token: String?, timeout: TimeAmount = .seconds(60)) {
        self.connection = connection
        self.token = token
        self.timeout = timeout
    }

    public func activate(version: String) async -> GRPCStatus {
        var message = ByteBufferAllocator().buffer(capacity: version.utf8.count + 8)
        Self.encodeActivateRequest(version: version, into: &message)
        let metadata = token.map { [("authorization", "Bearer \($0)")] } ?? []
        do {
            return try await connection.unary(path: Self.path, request: message, metadata: metadata, timeout: timeout)
                .get().status
        } catch {
            return GRPCStatus(.unavailable, "activate call failed: \(error)")
        }
    }

    /// `ActivateRequest { string version = 1; }` in protobuf wire format: the message is one
    /// length-delimited field, so the harness needs no generated code for it.
    public static func encodeActivateRequest(version: String, into buffer: inout ByteBuffer) {
        let bytes = Array(version.utf8)
        guard !bytes.isEmpty else { return }  // proto3 omits empty strings
        buffer.writeInteger(UInt8(0x0A))  // field 1, wire type 2 (length-delimited)
        var length = UInt64(bytes.count)
        while length >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: length) | 0x80)
            length >>= 7
        }
        buffer.writeInteger(UInt8(length))
        buffer.writeBytes(bytes)
    }
}

/// Alternates activations of `versions` every `intervalNanos` during the measured part of a
/// run and keeps the timeline. Stops after the first `UNIMPLEMENTED` (the server has no admin
/// service: further attempts would only add noise) and says so in the event.
public final class ReloadScheduler: Sendable {
    private let activator: any SnapshotActivator
    private let versions: [String]
    private let intervalNanos: UInt64
    private let events = NIOLockedValueBox<[ReloadEvent]>([])

    public init(activator: any SnapshotActivator, versions: [String], intervalNanos: UInt64) {
        precondition(!versions.isEmpty && intervalNanos > 0)
        self.activator = activator
        self.versions = versions
        self.intervalNanos = intervalNanos
    }

    /// The reloads so far.
    public var timeline: [ReloadEvent] { events.withLockedValue { $0 } }

    /// Activates at `warmup + k × interval` (k = 1, 2, …) while that is before `end`; times are
    /// nanoseconds since `start` on the monotonic clock. Returns when the run's end is reached
    /// or the task is cancelled.
    public func run(start: UInt64, warmupNanos: UInt64, endNanos: UInt64) async {
        var index = 0
        while !Task.isCancelled {
            let due = warmupNanos + UInt64(index + 1) * intervalNanos
            guard due < endNanos else { return }
            let now = monotonicNanos() - start
            if due > now { try? await Task.sleep(nanoseconds: due - now) }
            if Task.isCancelled { return }
            let version = versions[index % versions.count]
            let began = monotonicNanos()
            let status = await activator.activate(version: version)
            let event = ReloadEvent(
                atNanos: began - start, version: version, status: status.code.description,
                message: status.code == .unimplemented
                    ? "server has no snapshot admin service (\(status.message)); reloads stopped"
                    : status.message,
                durationNanos: monotonicNanos() - began)
            events.withLockedValue { $0.append(event) }
            if status.code == .unimplemented { return }
            index += 1
        }
    }
}

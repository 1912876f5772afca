import ArgumentParser
import CommandSupport
import Foundation
import GRPCServer
import NIOCore

/// Settings read from `--config FILE` (JSON). Every key is optional; command-line flags win.
///
/// ```json
/// { "listen": "127.0.0.1:50051", "snapshot": "/var/lib/rankd/demo", "threads": 2, "maxReceiveMessageSize": 4194304,
///   "maxConcurrentStreams": 256, "maxHeaderListSize": 16384, "maxConnections": 10000,
///   "maxConnectionsPerAddress": 1000, "connectionRatePerAddress": 50, "connectionBurstPerAddress": 100,
///   "abusiveConnectionCost": 10, "releaseMemoryAfterClosedConnections": 1000,
///   "idleTimeoutSeconds": 300, "idleTimeoutJitter": 0.1, "handshakeTimeoutSeconds": 10, "stallTimeoutSeconds": 30,
///   "drainTimeoutSeconds": 10, "logLevel": "info", "eventBudgetMiB": 256,
///   "eventIngestPriority": "idle", "int8Walk": true }
/// ```
///
/// With a snapshot root instead of `snapshot` (docs/OPERATIONS.md, "Publishing and hot reload"):
///
/// ```json
/// { "snapshotRoot": "/var/lib/rankd/snapshots", "adminTokenFile": "/etc/rankd/admin-token", "retain": 3,
///   "maxPublishBytes": 68719476736, "allowDimensionChange": false, "watchRoot": false, "watchIntervalSeconds": 2 }
/// ```
///
/// TLS (docs/OPERATIONS.md, "TLS and mutual TLS"):
///
/// ```json
/// { "tlsCert": "/etc/rankd/tls/tls.crt", "tlsKey": "/etc/rankd/tls/tls.key", "tlsClientCA": "/etc/rankd/tls/ca.crt",
///   "tlsAdminIdentities": ["uri:spiffe://prod/snapshot-publisher"], "tlsWatchIntervalSeconds": 5,
///   "tlsHandshakeTimeoutSeconds": 10 }
/// ```
struct ConfigFile: Decodable {
    var listen: String?
    var snapshot: String?
    var snapshotRoot: String?
    var adminTokenFile: String?
    var rankTokenFile: String?
    var retain: Int?
    var maxPublishBytes: Int?
    var allowDimensionChange: Bool?
    var watchRoot: Bool?
    var watchIntervalSeconds: Double?
    var threads: Int?
    var maxReceiveMessageSize: Int?
    var maxConcurrentStreams: Int?
    var maxHeaderListSize: Int?
    var maxConnections: Int?
    var maxConnectionsPerAddress: Int?
    var connectionRatePerAddress: Int?
    var connectionBurstPerAddress: Int?
    var abusiveConnectionCost: Int?
    var idleTimeoutSeconds: Int?
    var idleTimeoutJitter: Double?
    var releaseMemoryAfterClosedConnections: Int?
    var drainTimeoutSeconds: Int?
    var streamResetBurst: Int?
    var streamResetRefillPerSecond: Int?
    var controlFrameBurst: Int?
    var controlFrameRefillPerSecond: Int?
    var handshakeTimeoutSeconds: Int?
    var stallTimeoutSeconds: Int?
    var logLevel: String?
    var enableTestServices: Bool?
    var metricsListen: String?
    var accessLogEvery: Int?
    var otlpEndpoint: String?
    var traceSampleRatio: Double?
    var tlsCert: String?
    var tlsKey: String?
    var tlsClientCA: String?
    var tlsAdminIdentities: [String]?
    var tlsWatchIntervalSeconds: Double?
    var tlsHandshakeTimeoutSeconds: Int?
    var eventBudgetMiB: Int?
    var eventIngestPriority: String?
    var int8Walk: Bool?

    static func load(_ path: String) throws -> ConfigFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ValidationError("cannot read config file \(path): \(error.localizedDescription)")
        }
        do {
            let decoder = JSONDecoder()
            return try decoder.decode(ConfigFile.self, from: data)
        } catch DecodingError.dataCorrupted(let context) {
            throw ValidationError("config file \(path) is not valid JSON: \(context.debugDescription)")
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ValidationError("config file \(path): field '\(field)': \(context.debugDescription)")
        } catch {
            throw ValidationError("config file \(path): \(error)")
        }
    }
}

/// A listen address: `host:port` (`[::1]:50051` for IPv6); port 0 picks a free port.
func parseListenAddress(_ text: String, flag: String = "--listen") throws -> HostPort {
    do {
        return try HostPort(parsing: text, allowPortZero: true)
    } catch {
        throw ValidationError("\(flag) '\(text)': \(error)")
    }
}

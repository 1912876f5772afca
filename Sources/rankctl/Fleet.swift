import Foundation
import RankingAPI

/// Admin work on every replica of a fleet at once (`--servers a,b,c`): parallel calls, and the
/// all-or-nothing activation that `publish --activate` and `activate` use.
enum Fleet {
    /// Runs `work` on every endpoint in parallel.
    /// - Returns: one result per endpoint, in the endpoints' order; one replica's failure never
    ///   cancels the others' work.
    static func onEach<T: Sendable>(
        _ endpoints: [AdminEndpoint], _ work: @escaping @Sendable (Int, AdminEndpoint) async throws -> T
    ) async -> [Result<T, any Error>] {
        await withTaskGroup(of: (Int, Result<T, any Error>).self) { group in
            for (index, endpoint) in endpoints.enumerated() {
                group.addTask {
                    do { return (index, .success(try await work(index, endpoint))) } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var results = [Result<T, any Error>?](repeating: nil, count: endpoints.count)
            for await (index, result) in group { results[index] = result }
            return results.map { $0! }
        }
    }

    /// Activates `version` on every replica, all or nothing.
    ///
    /// Reads every replica's status first (an unreachable replica stops it before anything
    /// changes), activates in parallel on every replica not already on `version` (so running it
    /// again, e.g. after new replicas joined, touches only those), and if any activation fails
    /// rolls back (`Rollback`)
    /// each replica that had switched, so the fleet ends on the version it served before. A replica
    /// whose activation outcome is unknown (the call itself failed) is asked for its status again
    /// and rolled back if it did switch. Prints one line per replica.
    /// - Throws: `CommandFailure` saying what failed and where each replica was left.
    static func activateAll(_ version: String, on fleet: [AdminEndpoint]) async throws {
        let before = await onEach(fleet) { _, endpoint in try await endpoint.status() }
        let previous = try zip(fleet, before).map { endpoint, status in
            do {
                return try status.get().activeVersion
            } catch {
                throw CommandFailure("cannot read \(endpoint.address)'s status: \(error); nothing was activated")
            }
        }
        // nil: the replica already serves `version` and is left alone (activating it again would
        // reload and re-map the snapshot for nothing).
        let activations = await onEach(fleet) { index, endpoint -> ActivationResult? in
            previous[index] == version ? nil : try await endpoint.activate(version)
        }
        let failed = printEach(fleet, activations, failing: "activation") {
            $0.map(describe) ?? "already active: \(version)"
        }
        if failed.isEmpty {
            print("active on all \(fleet.count) replicas: \(version)")
            return
        }
        // Which replicas switched to `version` and must go back.
        let switched = await onEach(fleet) { index, endpoint -> Bool in
            switch activations[index] {
            case .success(let result): return result.map { $0.previousVersion != version } ?? false
            case .failure:
                // The call failed, but the replica may have switched before it did: ask.
                guard previous[index] != version else { return false }
                return try await endpoint.status().activeVersion == version
            }
        }
        let rollbacks = await onEach(fleet) { index, endpoint -> String? in
            guard case .success(true) = switched[index] else { return nil }
            guard !previous[index].isEmpty else {
                throw CommandFailure("it served nothing before \(version): nothing to roll back to")
            }
            let result = try await endpoint.rollback()
            guard result.activeVersion == previous[index] else {
                throw CommandFailure("rolled back to \(result.activeVersion), expected \(previous[index])")
            }
            return result.activeVersion
        }
        var notes: [String] = []
        for (index, endpoint) in fleet.enumerated() {
            if case .failure(let error) = switched[index] {
                notes.append("\(endpoint.address): state unknown (\(error))")
                continue
            }
            switch rollbacks[index] {
            case .success(.some(let back)):
                print("\(endpoint.address): rolled back to \(back)")
                notes.append("\(endpoint.address) rolled back to \(back)")
            case .success(.none): break
            case .failure(let error):
                print("\(endpoint.address): ROLLBACK FAILED: \(error)")
                notes.append("\(endpoint.address) still on \(version): rollback failed (\(error))")
            }
        }
        throw CommandFailure(
            "activation of \(version) failed on \(failed.count) of \(fleet.count) replicas (\(failed.joined(separator: ", ")))"
                + (notes.isEmpty ? "; no replica had switched" : "; " + notes.joined(separator: "; ")))
    }

    /// Prints one line per replica: `line(value)` for a success, "`what` FAILED: error" otherwise.
    /// - Returns: the addresses whose call failed.
    static func printEach<T>(
        _ fleet: [AdminEndpoint], _ results: [Result<T, any Error>], failing what: String, _ line: (T) -> String
    ) -> [String] {
        var failed: [String] = []
        for (endpoint, result) in zip(fleet, results) {
            switch result {
            case .success(let value): print("\(endpoint.address): \(line(value))")
            case .failure(let error):
                print("\(endpoint.address): \(what) FAILED: \(error)")
                failed.append(endpoint.address)
            }
        }
        return failed
    }

    /// One line for an activation result.
    static func describe(_ result: ActivationResult) -> String {
        "active: \(result.activeVersion) (was \(result.previousVersion.isEmpty ? "none" : result.previousVersion)); "
            + String(format: "loaded in %.1f ms", result.loadMilliseconds)
    }
}

import Dispatch
import GRPCServer
import LiveState
import Logging
import NIOCore
import RankingAPI
import RankingEngine
import RankingModel
import SnapshotLifecycle

/// `UpdateItems` and `DeleteUser`: live changes through the ``LiveOverlay``.
///
/// The event loop only checks the token; decoding and validating a batch (up to 10,000 items) runs on
/// a serial queue of its own, and the overlay's writer thread logs, syncs and applies it, then
/// completes the call. A Rank call on the same loop never waits for any of it.
extension SnapshotAdminService {
    /// Decoding and validation of update batches, off the event loops.
    private static let updateQueue = DispatchQueue(label: "rankd.live-updates")

    static func registerLiveUpdates(
        in router: inout GRPCRouter, store: SnapshotStore<ServingSnapshot>, live: LiveOverlay, auth: BearerTokenAuth,
        logger: Logger
    ) {
        router.register(
            service: serviceName, method: "UpdateItems",
            .unary { context, buffer in
                if let refused = auth.check(context) { return .failure(refused) }
                let promise = context.eventLoop.makePromise(of: ByteBuffer.self)
                updateQueue.async {
                    lowerCurrentThreadPriority()
                    do throws(GRPCStatus) {
                        let request = try AdminCodec.decodeUpdateItemsRequest(buffer)
                        do throws(UpdateValidationError) {
                            try request.validate()
                        } catch {
                            throw GRPCStatus(.invalidArgument, error.message)
                        }
                        guard let active = store.registry.current() else {
                            throw GRPCStatus(.unavailable, "no snapshot is active yet: there is nothing to update")
                        }
                        guard request.snapshotVersion.isEmpty || request.snapshotVersion == active.version else {
                            throw GRPCStatus(
                                .invalidArgument,
                                "snapshot_version: \(request.snapshotVersion) is not the active version (\(active.version))"
                            )
                        }
                        live.updateItems(request, against: active.snapshot) { result in
                            switch result {
                            case .success(let applied): promise.succeed(AdminCodec.encodeUpdateItemsResponse(applied))
                            case .failure(let error):
                                logFailure(error, logger: logger, method: "UpdateItems")
                                promise.fail(status(for: error))
                            }
                        }
                    } catch {
                        promise.fail(error)
                    }
                }
                return .future(promise.futureResult)
            })
        router.register(
            service: serviceName, method: "DeleteUser",
            .unary { context, buffer in
                if let refused = auth.check(context) { return .failure(refused) }
                let userID: String
                do throws(GRPCStatus) {
                    userID = try AdminCodec.decodeDeleteUserRequest(buffer)
                } catch {
                    return .failure(error)
                }
                guard !userID.isEmpty else { return .failure(GRPCStatus(.invalidArgument, "user_id: empty")) }
                guard userID.utf8.count <= UpdateItemsRequest.maxNameBytes else {
                    return .failure(
                        GRPCStatus(.invalidArgument, "user_id: longer than \(UpdateItemsRequest.maxNameBytes) bytes"))
                }
                let promise = context.eventLoop.makePromise(of: ByteBuffer.self)
                live.deleteUser(userID, against: store.registry.current()?.snapshot) { result in
                    switch result {
                    case .success(let deleted):
                        logger.info(
                            "user deleted",
                            metadata: ["known": "\(deleted.knownUser)", "sequence": "\(deleted.sequence)"])
                        promise.succeed(AdminCodec.encodeDeleteUserResponse(deleted))
                    case .failure(let error):
                        logFailure(error, logger: logger, method: "DeleteUser")
                        promise.fail(status(for: error))
                    }
                }
                return .future(promise.futureResult)
            })
    }

    /// The gRPC status for a live-update error.
    static func status(for error: LiveStateError) -> GRPCStatus {
        let code: GRPCStatus.Code =
            switch error.code {
            case .invalidArgument: .invalidArgument
            case .failedPrecondition: .failedPrecondition
            case .unavailable: .unavailable
            case .internalError: .internal
            }
        return GRPCStatus(code, error.message)
    }

    private static func logFailure(_ error: LiveStateError, logger: Logger, method: String) {
        // A refused batch is the caller's business; a log that cannot be written is the operator's.
        if error.code == .internalError {
            logger.error("live update failed", metadata: ["method": "\(method)", "error": "\(error.message)"])
        }
    }
}

import Glibc
import Logging
import NIOCore

/// Sits in the listening socket's pipeline, ahead of NIO's accept handler, and applies
/// ``AddressAdmission`` to every accepted connection before it is registered with an event loop:
/// a refused connection never gets a pipeline, a TLS handshake or an nghttp2 session. It is reset
/// (`SO_LINGER` 0) rather than closed, so a flood of refusals leaves no `TIME_WAIT` sockets here.
///
/// Thread safety: runs on the listening channel's event loop; ``AddressAdmission`` is shared.
final class AddressAdmissionHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let admission: AddressAdmission
    private let metrics: GRPCServerMetrics?
    private let logger: Logger

    init(admission: AddressAdmission, metrics: GRPCServerMetrics?, logger: Logger) {
        self.admission = admission
        self.metrics = metrics
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let child = unwrapInboundIn(data)
        let reason: RefusalReason
        switch admission.admit(child.remoteAddress, now: .now()) {
        case .admitted(let key):
            if let key {
                let admission = self.admission
                child.closeFuture.whenComplete { _ in admission.release(key) }
            }
            context.fireChannelRead(data)
            return
        case .refusedOpenLimit: reason = .perAddressOpen
        case .refusedRate: reason = .perAddressRate
        }
        metrics?.connectionRefused(reason)
        // Debug, not warning: a flood of refusals must not become a flood of log lines.
        logger.debug(
            "connection refused: \(reason.rawValue)", metadata: ["peer": "\(child.remoteAddress?.description ?? "?")"])
        // The child already belongs to a serving loop (NIO picks it at accept), and its socket options and
        // close run there: one task, not a hop per step, so a refusal wakes that loop once.
        child.eventLoop.execute {
            if let socket = child as? any SocketOptionProvider {
                _ = socket.setSoLinger(linger(l_onoff: 1, l_linger: 0))
            }
            child.close(promise: nil)
        }
    }
}

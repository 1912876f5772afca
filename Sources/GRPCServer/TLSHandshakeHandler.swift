import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// Stands behind the `NIOSSLServerHandler` of a TLS connection until its handshake is over, then
/// replaces itself with the gRPC connection handler, so a TLS connection's pipeline carries
/// exactly one handler more than a plaintext one (the TLS handler) once it serves calls.
///
/// - A client that did not negotiate ALPN `h2` is disconnected with a log line naming what it
///   negotiated (RFC 9113 §3.2: HTTP/2 over TLS is selected by ALPN, nothing else). NIOSSL's ALPN
///   selection cannot send the `no_application_protocol` alert itself, so the refusal comes
///   right after the handshake (`close_notify`), before any HTTP/2 byte.
/// - A handshake not finished within the timeout is cut off, so silent clients cannot hold
///   sockets (a plaintext connection's idle timer does the same once it serves calls).
/// - Handshake failures (no or untrusted client certificate, no common version or cipher) are
///   logged with the peer and BoringSSL's reason.
///
/// Runs on the connection's event loop only.
final class TLSHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let timeout: TimeAmount
    private let logger: Logger
    /// Builds the gRPC handler for a connection once its handshake succeeded.
    private let makeConnectionHandler: (TLSPeerIdentity?) -> any ChannelHandler
    private var timeoutTask: Scheduled<Void>?
    private var finished = false

    init(
        timeout: TimeAmount, logger: Logger, makeConnectionHandler: @escaping (TLSPeerIdentity?) -> any ChannelHandler
    ) {
        self.timeout = timeout
        self.logger = logger
        self.makeConnectionHandler = makeConnectionHandler
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timeoutTask = context.eventLoop.scheduleTask(in: timeout) { [logger, timeout] in
            logger.info(
                "TLS handshake timed out: closing the connection",
                metadata: ["peer": "\(channel.remoteAddress?.description ?? "?")", "timeout": "\(timeout)"])
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeoutTask?.cancel()
        timeoutTask = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A client gone mid-handshake: release the timer (and the channel it holds) now.
        timeoutTask?.cancel()
        timeoutTask = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = tls, !finished {
            finished = true
            timeoutTask?.cancel()
            guard negotiated == "h2" else {
                logger.info(
                    "TLS client refused: it did not negotiate HTTP/2 (ALPN h2)",
                    metadata: [
                        "peer": "\(context.channel.remoteAddress?.description ?? "?")",
                        "alpn": "\(negotiated ?? "none")",
                    ])
                context.close(promise: nil)
                return
            }
            // The handshake verified the chain against the client CAs; the certificate is there
            // only under mutual TLS.
            let certificate = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
                .peerCertificate
            do {
                let handler = makeConnectionHandler(certificate.map(TLSPeerIdentity.init(certificate:)))
                try context.pipeline.syncOperations.addHandler(handler, position: .after(self))
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            } catch {
                logger.error("cannot set up the connection after the TLS handshake", metadata: ["error": "\(error)"])
                context.close(promise: nil)
            }
            return
        }
        if event is GracefulShutdownEvent {
            // Nothing is in flight before the handshake ends.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let peer = context.channel.remoteAddress?.description ?? "?"
        if case NIOSSLError.handshakeFailed(let reason) = error {
            logger.info("TLS handshake failed", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
        } else {
            logger.debug(
                "connection error during the TLS handshake", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
        context.close(promise: nil)
    }
}

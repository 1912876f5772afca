import NIOCore
import NIOSSL
import NIOTLS

/// Reports to `connect` whether a TLS connection is usable, then leaves the pipeline. It is once
/// the handshake selected ALPN `h2` (gRPC needs HTTP/2, RFC 9113 §3.2) *and* the server's first
/// HTTP/2 bytes (its SETTINGS) arrived: under TLS 1.3 the client finishes its handshake before the
/// server has checked the client's certificate, so a refused certificate only shows as an alert
/// after it. Waiting for the server's first bytes makes `connect` fail with that reason instead of
/// the first call failing later. Bounded by `timeout`.
final class ClientTLSHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let ready: EventLoopPromise<Void>
    private let timeout: TimeAmount
    private var timeoutTask: Scheduled<Void>?
    private var handshakeDone = false
    private var finished = false

    init(ready: EventLoopPromise<Void>, timeout: TimeAmount) {
        self.ready = ready
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        let ready = self.ready
        let timeout = self.timeout
        timeoutTask = context.eventLoop.scheduleTask(in: timeout) {
            ready.fail(ClientTLSError("the TLS connection was not ready within \(timeout)"))
            channel.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timeoutTask?.cancel()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = tls {
            handshakeDone = true
            if negotiated != "h2" {
                finish(
                    .failure(ClientTLSError("the server did not select HTTP/2 (ALPN h2): got \(negotiated ?? "none")")))
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
        if handshakeDone, !finished {
            finish(.success(()))
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(
            .failure(
                ClientTLSError(
                    handshakeDone
                        ? "the server refused the connection after the TLS handshake: \(error)"
                        : "TLS handshake failed: \(error)")))
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(
            .failure(
                ClientTLSError(
                    handshakeDone
                        ? "the server closed the connection right after the TLS handshake"
                        : "the server closed the connection during the TLS handshake")))
        context.fireChannelInactive()
    }

    private func finish(_ result: Result<Void, any Error>) {
        guard !finished else { return }
        finished = true
        timeoutTask?.cancel()
        ready.completeWith(result)
    }
}

/// Why a TLS connection could not be set up.
public struct ClientTLSError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

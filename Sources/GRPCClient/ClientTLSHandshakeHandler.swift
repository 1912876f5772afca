import NIOCore
import NIOSSL
import NIOTLS

/// Reports the outcome of a client connection's TLS handshake to `connect`, then leaves the
/// pipeline: a server that did not select ALPN `h2` is refused (gRPC needs HTTP/2, RFC 9113 §3.2),
/// a failed handshake (untrusted or wrongly named certificate, refused client certificate)
/// fails `connect` with BoringSSL's reason instead of surfacing later as a failed call.
final class ClientTLSHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let handshake: EventLoopPromise<Void>
    private var done = false

    init(handshake: EventLoopPromise<Void>) {
        self.handshake = handshake
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = tls, !done {
            done = true
            if negotiated == "h2" {
                handshake.succeed()
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            } else {
                handshake.fail(ClientTLSError("the server did not select HTTP/2 (ALPN h2): got \(negotiated ?? "none")"))
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done {
            done = true
            handshake.fail(ClientTLSError("TLS handshake failed: \(error)"))
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            handshake.fail(ClientTLSError("the server closed the connection during the TLS handshake"))
        }
        context.fireChannelInactive()
    }
}

/// Why a TLS connection could not be set up.
public struct ClientTLSError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

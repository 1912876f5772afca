public import GRPCServer
import NIOCore
import RankingAPI

/// `rankd.testing.v1.Echo`: a test-only service that exercises the gRPC core through a stock
/// client (unary, delayed unary for deadlines, client streaming, server streaming). rankd
/// registers it only with `--enable-test-services`.
public enum EchoService {
    public static let serviceName = "rankd.testing.v1.Echo"

    /// Registers `Unary`, `Collect` and `Expand` on `router`.
    public static func register(in router: inout GRPCRouter) {
        router.register(
            service: serviceName, method: "Unary",
            .unary { context, buffer in
                let request: EchoCodec.Request
                do throws(GRPCStatus) {
                    request = try EchoCodec.decodeRequest(buffer)
                } catch {
                    return .failure(error)
                }
                let response = EchoCodec.encodeResponse(
                    .init(text: request.text, payload: request.payload), allocator: ByteBufferAllocator())
                guard request.delayMilliseconds > 0 else { return .response(response) }
                // Delay without blocking the event loop, so deadlines can be tested for real.
                return .future(
                    context.eventLoop.scheduleTask(in: .milliseconds(Int64(request.delayMilliseconds))) { response }
                        .futureResult)
            })
        router.register(
            service: serviceName, method: "Collect",
            .clientStreaming { _ in CollectCall() })
        router.register(
            service: serviceName, method: "Expand",
            .serverStreaming { _, buffer, writer in
                let request: EchoCodec.Request
                do throws(GRPCStatus) {
                    request = try EchoCodec.decodeRequest(buffer)
                } catch {
                    return writer.finish(error)
                }
                let allocator = ByteBufferAllocator()
                for index in 0..<request.count {
                    writer.send(
                        EchoCodec.encodeResponse(
                            .init(text: "\(request.text) \(index)", payload: request.payload), allocator: allocator))
                }
                writer.finish(.ok)
            })
    }
}

/// Counts the messages and payload bytes of one `Collect` call.
private final class CollectCall: ClientStreamingCall {
    private var messages: UInt32 = 0
    private var payloadBytes: UInt64 = 0
    private var lastText = ""

    func receive(_ message: ByteBuffer) throws(GRPCStatus) -> EventLoopFuture<Void>? {
        let request = try EchoCodec.decodeRequest(message)
        messages += 1
        payloadBytes += UInt64(request.payload.count)
        lastText = request.text
        return nil
    }

    func finish() -> UnaryResult {
        .response(
            EchoCodec.encodeResponse(
                .init(text: lastText, messages: messages, payloadBytes: payloadBytes), allocator: ByteBufferAllocator())
        )
    }

    func cancel() {}
}

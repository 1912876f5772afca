internal import CNGHTTP2
import GRPCCore
import NIOConcurrencyHelpers
import NIOCore

/// The response side of a call: messages, trailers (or Trailers-Only), HTTP-level errors, the
/// body bytes nghttp2 pulls, and the end of a stream.
extension GRPCServerConnectionHandler {
    /// Queues one response message (headers first if this is the first).
    func sendMessage(_ message: ByteBuffer, on stream: ServerStream) {
        guard let session, stream.canSend else { return }
        GRPCMessageFramer.write(message, into: &stream.outbound)
        if !stream.responseHeadersSent {
            stream.responseHeadersSent = true
            var provider = nghttp2_data_provider(
                source: nghttp2_data_source(ptr: Unmanaged.passUnretained(stream).toOpaque()),
                read_callback: readResponseData)
            let block = HeaderBlock.grpcResponse
            _ = nghttp2_submit_response(session.raw, stream.id, block.nva, block.count, &provider)
        } else if stream.dataDeferred {
            stream.dataDeferred = false
            session.resumeData(stream.id)
        }
    }

    /// Ends the call with `status`: trailers after the messages, or Trailers-Only if none went out.
    func finish(_ stream: ServerStream, with status: GRPCStatus) {
        guard let session, stream.state == .receiving || stream.state == .handling else { return }
        stream.state = .finished
        if let metrics, stream.routeIndex >= 0 {
            metrics.handled(route: stream.routeIndex, code: status.code, started: stream.startedAt)
        }
        stream.deadlineTask?.cancel()
        stream.deadlineTask = nil
        stream.writerActive?.withLockedValue { $0 = false }
        stream.fireDrainWaiter(force: true)
        if stream.clientStreamingCall != nil, status.code != .ok || !stream.requestEnded {
            stream.clientStreamingCall?.cancel()
        }
        stream.clientStreamingCall = nil
        if status.code != .ok { stream.bidirectionalCall?.cancel() }
        stream.bidirectionalCall = nil
        if !stream.requestEnded { stream.resetAfterResponse = true }
        if stream.responseHeadersSent {
            stream.trailers = status
            if stream.dataDeferred {
                stream.dataDeferred = false
                session.resumeData(stream.id)
            }
        } else {
            let block = HeaderBlock.trailersOnly(for: status)
            _ = nghttp2_submit_response(session.raw, stream.id, block.nva, block.count, nil)
        }
    }

    func fail(_ stream: ServerStream, _ status: GRPCStatus) {
        finish(stream, with: status)
    }

    func respondHTTPError(_ stream: ServerStream, status: String, message: String) {
        guard let session else { return }
        stream.state = .finished
        if !stream.requestEnded { stream.resetAfterResponse = true }
        let block = HeaderBlock([
            (":status", status), ("content-type", "application/grpc"),
            ("grpc-status", String(GRPCStatus.Code.internal.rawValue)),
            ("grpc-message", String(decoding: GRPCPercentEncoding.encode(message), as: UTF8.self)),
        ])
        _ = nghttp2_submit_response(session.raw, stream.id, block.nva, block.count, nil)
    }

    /// nghttp2 asks for response body bytes.
    func readData(
        _ stream: ServerStream, into buffer: UnsafeMutablePointer<UInt8>, length: Int,
        flags: UnsafeMutablePointer<UInt32>
    ) -> Int {
        let count = min(length, stream.outbound.readableBytes)
        if count > 0 {
            lastDataSent = now
            stream.outbound.withUnsafeReadableBytes { source in
                UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress!, byteCount: count)
            }
            stream.outbound.moveReaderIndex(forwardBy: count)
        }
        defer { stream.fireDrainWaiter() }
        if stream.outbound.readableBytes == 0 {
            stream.outbound.clear()
            if let status = stream.trailers, let session {
                // grpcio rejects DATA carrying END_STREAM: end the body here and let the trailers
                // HEADERS frame carry END_STREAM.
                flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
                let block = HeaderBlock.trailers(for: status)
                _ = nghttp2_submit_trailer(session.raw, stream.id, block.nva, block.count)
            } else if count == 0 {
                stream.dataDeferred = true
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            }
        }
        return count
    }

    func frameSent(streamID: Int32, endStream: Bool) {
        guard endStream, let stream = stream(streamID), stream.resetAfterResponse, let session else { return }
        stream.resetAfterResponse = false
        session.resetStream(streamID, errorCode: HTTP2ErrorCode.noError)
    }

    /// nghttp2 closed the stream (either side, any reason): drop our references to it.
    func closeStream(_ stream: ServerStream, cancelled: Bool) {
        stream.deadlineTask?.cancel()
        stream.deadlineTask = nil
        stream.writerActive?.withLockedValue { $0 = false }
        stream.fireDrainWaiter(force: true)
        if stream.state != .finished, let call = stream.clientStreamingCall {
            call.cancel()
        }
        if let metrics, stream.routeIndex >= 0, stream.state == .receiving || stream.state == .handling {
            metrics.handled(route: stream.routeIndex, code: .cancelled, started: stream.startedAt)
        }
        stream.clientStreamingCall = nil
        if stream.state != .finished { stream.bidirectionalCall?.cancel() }
        stream.bidirectionalCall = nil
        stream.state = .closed
        if let session { nghttp2_session_set_stream_user_data(session.raw, stream.id, nil) }
        if liveStreams === stream { liveStreams = stream.next }
        stream.previous?.next = stream.next
        stream.next?.previous = stream.previous
        stream.previous = nil
        stream.next = nil
        openStreams -= 1
        Unmanaged.passUnretained(stream).release()
        if openStreams == 0 { idleSince = now }
    }
}

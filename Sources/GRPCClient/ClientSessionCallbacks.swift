internal import CNGHTTP2
import GRPCCore

// The nghttp2 client callbacks: file-private C functions that check their pointers, recover the handler from
// user_data and never let a Swift error cross into C.

private func handler(_ userData: UnsafeMutableRawPointer?) -> GRPCClientConnectionHandler? {
    userData.map { Unmanaged<GRPCClientConnectionHandler>.fromOpaque($0).takeUnretainedValue() }
}

private func stream(_ session: OpaquePointer?, _ id: Int32) -> ClientStream? {
    guard let session, let pointer = nghttp2_session_get_stream_user_data(session, id) else { return nil }
    return Unmanaged<ClientStream>.fromOpaque(pointer).takeUnretainedValue()
}

func clientCallbacks(_ callbacks: OpaquePointer) {
    nghttp2_session_callbacks_set_on_header_callback(callbacks) {
        session, frame, name, nameLength, value, valueLength, _, userData in
        guard let frame, let name, let value, let handler = handler(userData),
            let stream = stream(session, frame.pointee.hd.stream_id)
        else { return 0 }
        handler.header(
            stream, name: UnsafeRawBufferPointer(start: name, count: nameLength),
            value: UnsafeRawBufferPointer(start: value, count: valueLength))
        return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
        session, _, streamID, data, length, userData in
        guard let data, let handler = handler(userData), let stream = stream(session, streamID) else { return 0 }
        handler.data(stream, UnsafeRawBufferPointer(start: data, count: length))
        return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { session, streamID, errorCode, userData in
        guard let handler = handler(userData), let stream = stream(session, streamID) else { return 0 }
        handler.closed(stream, errorCode: errorCode)
        return 0
    }
}

let clientReadRequestData: nghttp2_data_source_read_callback = {
    _, _, buffer, length, flags, source, userData in
    guard let buffer, let flags, let pointer = source?.pointee.ptr, let handler = handler(userData) else {
        return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
    }
    let stream = Unmanaged<ClientStream>.fromOpaque(pointer).takeUnretainedValue()
    return handler.readRequest(stream, into: buffer, length: length, flags: flags)
}

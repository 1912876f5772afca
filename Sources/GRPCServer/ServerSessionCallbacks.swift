internal import CNGHTTP2
import GRPCCore

// MARK: - nghttp2 callbacks
//
// File-private C functions: each checks its pointers, recovers the connection from user_data and
// never lets a Swift error cross into C. Returning 0 means "carry on".

private func connection(_ userData: UnsafeMutableRawPointer?) -> GRPCServerConnectionHandler? {
    userData.map { Unmanaged<GRPCServerConnectionHandler>.fromOpaque($0).takeUnretainedValue() }
}

func serverCallbacks(_ callbacks: OpaquePointer) {
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
        guard let frame, let connection = connection(userData) else { return 0 }
        if frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
            frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
        {
            connection.beginStream(id: frame.pointee.hd.stream_id)
        }
        return 0
    }
    nghttp2_session_callbacks_set_on_header_callback(callbacks) {
        _, frame, name, nameLength, value, valueLength, _, userData in
        guard let frame, let name, let value, let connection = connection(userData),
            frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
            let stream = connection.stream(frame.pointee.hd.stream_id)
        else { return 0 }
        connection.header(
            stream, name: UnsafeRawBufferPointer(start: name, count: nameLength),
            value: UnsafeRawBufferPointer(start: value, count: valueLength))
        return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
        guard let frame, let connection = connection(userData) else { return 0 }
        let header = frame.pointee.hd
        let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(header.type) {
        case NGHTTP2_HEADERS.rawValue:
            guard let stream = connection.stream(header.stream_id) else { break }
            if frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
                connection.headersComplete(stream, endStream: endStream)
            } else if endStream {
                // Trailers from the client end the request.
                connection.requestEnded(stream)
            }
        case NGHTTP2_DATA.rawValue:
            if endStream, let stream = connection.stream(header.stream_id) {
                connection.requestEnded(stream)
            }
        case NGHTTP2_RST_STREAM.rawValue:
            connection.clientResetStream()
        case NGHTTP2_PING.rawValue, NGHTTP2_SETTINGS.rawValue:
            if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 {
                connection.clientControlFrame(settings: UInt32(header.type) == NGHTTP2_SETTINGS.rawValue)
            }
        default:
            break
        }
        return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
        _, _, streamID, data, length, userData in
        guard let data, let connection = connection(userData) else { return 0 }
        connection.dataReceived(streamID: streamID, UnsafeRawBufferPointer(start: data, count: length))
        return 0
    }
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
        guard let frame, let connection = connection(userData) else { return 0 }
        let header = frame.pointee.hd
        let type = UInt32(header.type)
        if type == NGHTTP2_HEADERS.rawValue || type == NGHTTP2_DATA.rawValue {
            connection.frameSent(
                streamID: header.stream_id, endStream: header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0)
        }
        return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, _, userData in
        guard let connection = connection(userData), let stream = connection.stream(streamID) else { return 0 }
        connection.closeStream(stream, cancelled: false)
        return 0
    }
}

let readResponseData: nghttp2_data_source_read_callback = {
    _, _, buffer, length, flags, source, userData in
    guard let buffer, let flags, let pointer = source?.pointee.ptr, let connection = connection(userData) else {
        return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue)
    }
    let stream = Unmanaged<ServerStream>.fromOpaque(pointer).takeUnretainedValue()
    return connection.readData(stream, into: buffer, length: length, flags: flags)
}

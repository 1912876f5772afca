internal import CNGHTTP2

/// Owns one `nghttp2_session` (memory mode: we feed it bytes and take bytes out; it never touches
/// a socket) and frees it in `deinit`. Used by the server and the client connection handlers.
///
/// Not thread-safe: a session belongs to one connection's event loop.
package final class NGHTTP2Session {
    package let raw: OpaquePointer

    /// Creates a session whose callbacks receive `userData` (an unretained pointer to the owner,
    /// which must outlive the session).
    package init(
        role: Role, userData: UnsafeMutableRawPointer, configure: (OpaquePointer) -> Void,
        options: ((OpaquePointer) -> Void)? = nil
    ) {
        var callbacks: OpaquePointer?
        precondition(nghttp2_session_callbacks_new(&callbacks) == 0, "nghttp2: out of memory")
        defer { nghttp2_session_callbacks_del(callbacks) }
        configure(callbacks!)
        var option: OpaquePointer?
        precondition(nghttp2_option_new(&option) == 0, "nghttp2: out of memory")
        defer { nghttp2_option_del(option) }
        options?(option!)
        var session: OpaquePointer?
        let rc: Int32 =
            switch role {
            case .server: nghttp2_session_server_new2(&session, callbacks, userData, option)
            case .client: nghttp2_session_client_new2(&session, callbacks, userData, option)
            }
        precondition(rc == 0 && session != nil, "nghttp2: session creation failed (\(rc))")
        raw = session!
    }

    deinit {
        nghttp2_session_del(raw)
    }

    package enum Role { case server, client }

    /// Feeds received bytes. Returns `nil` on success or nghttp2's error text on a fatal
    /// protocol error (after which the connection must be closed once pending output is sent).
    package func receive(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
        let rc = nghttp2_session_mem_recv(raw, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        return rc < 0 ? String(cString: nghttp2_strerror(Int32(rc))) : nil
    }

    /// Appends every byte nghttp2 wants to send to `buffer`. The pointer `mem_send` lends is
    /// valid only until the next nghttp2 call, so the bytes are copied out at once.
    /// Returns nghttp2's error text on failure.
    package func drainOutput(into append: (UnsafeRawBufferPointer) -> Void) -> String? {
        while true {
            var data: UnsafePointer<UInt8>?
            let count = nghttp2_session_mem_send(raw, &data)
            if count < 0 { return String(cString: nghttp2_strerror(Int32(count))) }
            if count == 0 { return nil }
            append(UnsafeRawBufferPointer(start: data, count: count))
        }
    }

    /// Whether the session still wants to read or write; when neither, the connection is done.
    package var isAlive: Bool {
        nghttp2_session_want_read(raw) != 0 || nghttp2_session_want_write(raw) != 0
    }

    /// Submits SETTINGS. In memory mode nghttp2 sends none by itself, and clients wait for them.
    package func submitSettings(_ settings: [(id: Int32, value: UInt32)]) {
        var entries = settings.map { nghttp2_settings_entry(settings_id: $0.id, value: $0.value) }
        _ = nghttp2_submit_settings(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
    }

    /// Raises the connection-level receive window (stream 0).
    package func setConnectionWindow(_ size: Int) {
        _ = nghttp2_session_set_local_window_size(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(clamping: size))
    }

    /// Sends GOAWAY with the last stream we processed and `errorCode`.
    package func submitGoAway(errorCode: UInt32, lastStreamID: Int32? = nil) {
        let last = lastStreamID ?? nghttp2_session_get_last_proc_stream_id(raw)
        _ = nghttp2_submit_goaway(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode, nil, 0)
    }

    /// Ends the session with GOAWAY(`errorCode`); nghttp2 stops reading afterwards.
    package func terminate(errorCode: UInt32) {
        _ = nghttp2_session_terminate_session(raw, errorCode)
    }

    /// Resets one stream.
    package func resetStream(_ id: Int32, errorCode: UInt32) {
        _ = nghttp2_submit_rst_stream(raw, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, errorCode)
    }

    /// Returns flow-control credit for `count` DATA bytes of stream `id`, to the stream's window and
    /// the connection's (RFC 9113 §6.9). Only for sessions made with `no_auto_window_update`:
    /// nghttp2 then sends WINDOW_UPDATE once half a window has been consumed, as it would have
    /// done by itself. Padding and DATA for closed streams it consumes itself. Fails only without
    /// memory, when the WINDOW_UPDATE is lost: ignored like the other submit failures here.
    package func consume(stream id: Int32, _ count: Int) {
        _ = nghttp2_session_consume(raw, id, count)
    }

    /// Returns credit for `count` DATA bytes to the connection window only.
    package func consumeConnection(_ count: Int) {
        _ = nghttp2_session_consume_connection(raw, count)
    }

    /// Returns credit for `count` DATA bytes to stream `id`'s window only (a no-op once the
    /// stream is closed).
    package func consumeStream(_ id: Int32, _ count: Int) {
        _ = nghttp2_session_consume_stream(raw, id, count)
    }

    /// Resumes a data provider that returned `NGHTTP2_ERR_DEFERRED`.
    package func resumeData(_ id: Int32) {
        _ = nghttp2_session_resume_data(raw, id)
    }
}

/// HTTP/2 error codes (RFC 9113 §7) as the `UInt32` nghttp2 takes.
package enum HTTP2ErrorCode {
    package static let noError = UInt32(NGHTTP2_NO_ERROR.rawValue)
    package static let protocolError = UInt32(NGHTTP2_PROTOCOL_ERROR.rawValue)
    package static let internalError = UInt32(NGHTTP2_INTERNAL_ERROR.rawValue)
    package static let refusedStream = UInt32(NGHTTP2_REFUSED_STREAM.rawValue)
    package static let cancel = UInt32(NGHTTP2_CANCEL.rawValue)
    package static let enhanceYourCalm = UInt32(NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
}

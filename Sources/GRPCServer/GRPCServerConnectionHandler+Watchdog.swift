import NIOCore

/// Cuts off connections that hold server resources without making progress: slow or absent
/// handshakes and header blocks (slowloris), responses that wait on a window the client never
/// reopens (zero-window reader), requests whose bytes never come, sockets nobody reads.
/// See ``GRPCServerConfiguration/handshakeTimeout`` and ``GRPCServerConfiguration/stallTimeout``.
extension GRPCServerConnectionHandler {
    /// Run by the loop's ``ConnectionSweeper`` every sweep period (a quarter of the shortest timeout),
    /// so a limit is enforced at most a quarter late.
    func checkProgress(now: NIODeadline) {
        guard session != nil, !closing, let context else { return }
        if !handshakeDone, now - startedAt >= configuration.handshakeTimeout {
            return cutOff("no client preface and SETTINGS within \(configuration.handshakeTimeout)", .handshake)
        }
        if let since = unwritableSince, now - since >= configuration.stallTimeout {
            // The client has not read its socket for the whole time: a GOAWAY could not get out.
            logger.warning(
                "closing connection: the client has not read for \(configuration.stallTimeout)",
                metadata: ["peer": "\(context.channel.remoteAddress?.description ?? "?")"])
            metrics?.abuseGoAway(.stall)
            penaliseAddress()
            context.close(promise: nil)
            return
        }
        var slowHeaders = false
        var blockedOutput = false
        var awaitingRequest = false
        var stream = liveStreams
        while let current = stream {
            if current.state == .receiving {
                if !current.headersReceived {
                    slowHeaders = slowHeaders || now - current.began >= configuration.handshakeTimeout
                } else if !current.requestEnded && current.withheldBytes == 0 {
                    // Waiting for request bytes the client could send (we are not throttling it).
                    awaitingRequest = true
                }
            }
            if current.outbound.readableBytes > 0 { blockedOutput = true }
            stream = current.next
        }
        if slowHeaders {
            cutOff("a request header block took longer than \(configuration.handshakeTimeout)", .handshake)
        } else if blockedOutput, now - lastDataSent >= configuration.stallTimeout {
            cutOff("responses waited \(configuration.stallTimeout) for flow-control window", .stall)
        } else if awaitingRequest, now - lastReceived >= configuration.stallTimeout {
            cutOff("requests waited \(configuration.stallTimeout) for the client's bytes", .stall)
        }
    }
}

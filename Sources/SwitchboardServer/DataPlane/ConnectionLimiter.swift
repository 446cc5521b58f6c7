import NIOCore
import Synchronization

/// Counts the open client connections of all proxy listeners (`proxy.max_connections`). A
/// connection over the limit is answered 503 and closed before anything of it is read, so a
/// flood of connections costs the connections already open nothing but the accept.
final class ConnectionLimiter: Sendable {
    let maximum: Int
    private let open = Atomic<Int>(0)
    private let refusedCount = Atomic<Int>(0)

    init(maximum: Int) {
        self.maximum = maximum
    }

    /// Open connections now.
    var current: Int { open.load(ordering: .relaxed) }
    /// Connections refused since start.
    var refused: Int { refusedCount.load(ordering: .relaxed) }

    /// Counts `channel` until it closes; `false` (and nothing counted) when the limit is reached.
    func admit(_ channel: any Channel) -> Bool {
        if open.add(1, ordering: .relaxed).newValue > maximum {
            open.subtract(1, ordering: .relaxed)
            refusedCount.add(1, ordering: .relaxed)
            return false
        }
        channel.closeFuture.whenComplete { _ in self.open.subtract(1, ordering: .relaxed) }
        return true
    }

    /// What a refused plain-HTTP client reads before the close (a TLS client gets only the close).
    static let refusal: ByteBuffer = {
        let body = #"{"error_msg":"too many open connections, try again later"}"#
        return ByteBuffer(
            string:
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\nRetry-After: 1\r\n\r\n\(body)"
        )
    }()

    /// Answers 503 on a refused plain connection, then closes it as `guard` closes after a
    /// rejection (lingering: the request the client already sent is read and dropped, so the
    /// close does not reset the connection before the client has read the 503).
    static func refuse(_ channel: any Channel, guard state: RequestGuard) {
        let bound = NIOLoopBound(state, eventLoop: channel.eventLoop)
        state.rejected = true
        channel.writeAndFlush(refusal).whenComplete { _ in bound.value.lingeringClose(channel) }
    }
}

import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A provider that misbehaves below HTTP, which an HTTP server framework cannot do: it resets
/// connections (RST, via SO_LINGER 0) before sending any response byte. Plain blocking
/// sockets on its own threads: test support only.
final class RawUpstream: Sendable {
    enum Mode: Sendable {
        /// Every request: read it, then reset the connection.
        case resetBeforeResponse
        /// The first request on each connection gets a keep-alive 200 with `body`; the next
        /// request on the same (pooled) connection is reset.
        case serveThenReset(body: String)
        /// Read a request, never answer, and report when the gateway closes the connection
        /// (EOF or reset on the socket) through ``peerClosed``.
        case holdOpen
        /// Read a request, answer 200 `text/event-stream` with `events` (chunked), then go
        /// silent without closing, and report through ``peerClosed`` when the gateway closes.
        case streamThenHold(events: [String])
        /// Answer every request with a 200 `body`, keeping the connection open; with
        /// `closeAfter`, close it after that many answers without announcing it (as a server
        /// whose keep-alive timeout ran out does); with `announceClose`, each answer says
        /// `Connection: close` and the connection is closed after it.
        case keepAlive(body: String, closeAfter: Int? = nil, announceClose: Bool = false)
    }

    /// One element each time the gateway closed a held connection (``Mode/holdOpen``).
    let peerClosed: AsyncStream<ContinuousClock.Instant>
    private let peerClosedContinuation: AsyncStream<ContinuousClock.Instant>.Continuation
    /// One element each time a request has been read.
    let arrived: AsyncStream<Void>
    private let arrivedContinuation: AsyncStream<Void>.Continuation

    let port: Int
    private let listener: Int32
    private let mode: Mode
    private let count = Mutex(0)
    private let accepted = Mutex(0)
    private let stopped = Mutex(false)

    /// Requests read (including reset ones).
    var requests: Int { count.withLock { $0 } }
    /// Connections the gateway opened.
    var connections: Int { accepted.withLock { $0 } }
    var endpoint: String { "http://127.0.0.1:\(port)" }

    init(mode: Mode) throws {
        self.mode = mode
        (peerClosed, peerClosedContinuation) = AsyncStream.makeStream()
        (arrived, arrivedContinuation) = AsyncStream.makeStream()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 64) == 0 else { throw POSIXError(.EADDRINUSE) }
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        listener = fd
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    func stopListening() {
        stopped.withLock { $0 = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while !stopped.withLock({ $0 }) {
            let connection = accept(listener, nil, nil)
            if connection >= 0 { _ = fcntl(connection, F_SETFD, FD_CLOEXEC) }  // see RawClient
            if connection < 0 { return }
            accepted.withLock { $0 += 1 }
            let thread = Thread { [self] in serve(connection) }
            thread.start()
        }
    }

    /// Reads one request (head and Content-Length body); `false` when the peer closed.
    private func readRequest(_ fd: Int32) -> Bool {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { return false }
            data += buffer[0..<n]
            let text = String(decoding: data, as: UTF8.self)
            guard let headEnd = text.range(of: "\r\n\r\n") else { continue }
            let head = text[..<headEnd.lowerBound].lowercased()
            var length = 0
            for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
            if data.count - text.utf8.distance(from: text.utf8.startIndex, to: headEnd.upperBound) >= length {
                return true
            }
        }
    }

    /// Blocks until the gateway closes the connection (EOF or reset), reports it, closes.
    private func awaitPeerClose(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while read(fd, &buffer, buffer.count) > 0 {}
        peerClosedContinuation.yield(.now)
        close(fd)
    }

    private func reset(_ fd: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(fd)
    }

    private func serve(_ fd: Int32) {
        var served = 0
        while readRequest(fd) {
            count.withLock { $0 += 1 }
            arrivedContinuation.yield()
            switch mode {
            case .holdOpen:
                awaitPeerClose(fd)
                return
            case .streamThenHold(let events):
                var response =
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                for event in events { response += String(event.utf8.count, radix: 16) + "\r\n" + event + "\r\n" }
                _ = Array(response.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                awaitPeerClose(fd)
                return
            case .resetBeforeResponse:
                reset(fd)
                return
            case .keepAlive(let body, let closeAfter, let announceClose):
                served += 1
                let close = announceClose ? "connection: close\r\n" : ""
                let response =
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\(close)content-length: \(body.utf8.count)\r\n\r\n\(body)"
                _ = Array(response.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if announceClose || closeAfter.map({ served >= $0 }) == true {
                    Glibc.close(fd)
                    return
                }
            case .serveThenReset(let body):
                if served > 0 {
                    reset(fd)
                    return
                }
                served += 1
                let response =
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\n\r\n\(body)"
                _ = Array(response.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            }
        }
        close(fd)
    }
}

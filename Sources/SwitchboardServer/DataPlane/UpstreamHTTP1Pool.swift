import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// One request to an upstream, as the AI path builds it: the head as it will be written, no URL
/// string built and parsed again (except for TLS upstreams, which AsyncHTTPClient serves).
struct UpstreamRequest: Sendable {
    var scheme: String
    var host: String
    var port: Int
    var head: HTTPRequestHead
    var body: ByteBuffer
    /// `false` with `keepalive: false` (`Connection: close`): not pooled afterwards.
    var keepAlive: Bool

    /// The same request for AsyncHTTPClient.
    var clientRequest: HTTPClientRequest {
        let authority = host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)"
        var request = HTTPClientRequest(url: "\(scheme)://\(authority)\(head.uri)")
        request.method = head.method
        request.headers = head.headers
        request.body = .bytes(body)
        return request
    }
}

/// An upstream's answer: its head and body as AsyncHTTPClient gives them, and, when the
/// gateway's own pool served it, the same body with reads that take a deadline without a task.
struct UpstreamAnswer: Sendable {
    var response: HTTPClientResponse
    var pooledBody: UpstreamResponseBody?
}

/// HTTP/1.1 to plain-HTTP upstreams on swift-nio's own codecs (`HTTPRequestEncoder`,
/// `HTTPResponseDecoder`), with connections pooled per event loop and upstream: a request is
/// served on the event loop its client connection lives on, from connect to the last body byte,
/// without hopping threads. AsyncHTTPClient's general machinery (its pool state machine, request
/// hand-off, URL parsing) was a fifth of a request's CPU; TLS upstreams still use it.
///
/// Answers and errors have AsyncHTTPClient's shapes (`HTTPClientResponse`, `HTTPClientError`
/// timeouts), so the callers classify failures the same way whichever client served them.
final class UpstreamHTTP1Pool: Sendable {
    struct Key: Hashable {
        var loop: ObjectIdentifier
        var host: String
        var port: Int
    }

    private let idle = Mutex<[Key: [UpstreamConnection]]>([:])
    static let maxIdlePerKey = 1024
    static let idleTimeout = TimeAmount.seconds(60)

    /// Sends `request` and returns the response head with a body to read. `deadline` bounds
    /// connecting and the wait for the head; `readTimeout` bounds every silence after sending.
    func execute(
        _ request: UpstreamRequest, deadline: NIODeadline, readTimeout: TimeAmount, connectTimeout: TimeAmount
    ) async throws -> UpstreamAnswer {
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? MultiThreadedEventLoopGroup.singleton.next()
        let key = Key(loop: ObjectIdentifier(loop), host: request.host, port: request.port)
        // A pooled connection the upstream closed in the meantime fails before any byte of an
        // answer: the request is then sent once more on a new connection (it never reached the
        // upstream's application).
        if let reused = lease(key) {
            do {
                return try await exchange(request, on: reused, key: key, deadline: deadline, readTimeout: readTimeout)
            } catch is UnansweredOnReused {
                // Sent again below on a new connection.
            }
        }
        let remaining = deadline - .now()
        let connection = try await connect(key, loop: loop, timeout: min(connectTimeout, max(remaining, .zero)))
        do {
            return try await exchange(request, on: connection, key: key, deadline: deadline, readTimeout: readTimeout)
        } catch let failure as UnansweredOnReused {
            throw failure.error
        }
    }

    /// The request failed on a reused connection before any byte of the answer arrived.
    struct UnansweredOnReused: Error {
        var error: any Error
    }

    private func exchange(
        _ request: UpstreamRequest, on connection: UpstreamConnection, key: Key, deadline: NIODeadline,
        readTimeout: TimeAmount
    ) async throws -> UpstreamAnswer {
        let lease = UpstreamLease(connection: connection, pool: self, key: key, keepAlive: request.keepAlive)
        var head = request.head
        head.headers.replaceOrAdd(name: "content-length", value: String(request.body.readableBytes))
        try await lease.onLoop { [head] in
            connection.send(head, body: request.body, headDeadline: deadline, readTimeout: readTimeout)
        }
        while true {
            let part: HTTPClientResponsePart?
            do {
                part = try await lease.next()
            } catch {
                let answered = (try? await lease.onLoop { connection.receivedAny }) ?? true
                if !answered, Self.isClosure(error) {
                    throw UnansweredOnReused(error: error)
                }
                throw error
            }
            switch part {
            case .head(let head)?:
                if head.status.code < 200 { continue }  // 1xx: the real answer follows
                lease.keepAlive = lease.keepAlive && head.isKeepAlive
                let body = UpstreamResponseBody(lease: lease)
                return UpstreamAnswer(
                    response: HTTPClientResponse(
                        version: head.version, status: head.status, headers: head.headers, body: .stream(body)),
                    pooledBody: body)
            case .body?, .end?:
                continue  // not before a head: the decoder does not produce these
            case nil:
                throw UnansweredOnReused(error: HTTPClientError.remoteConnectionClosed)
            }
        }
    }

    static func isClosure(_ error: any Error) -> Bool {
        if let clientError = error as? HTTPClientError { return clientError == .remoteConnectionClosed }
        if let io = error as? IOError { return io.errnoCode == ECONNRESET || io.errnoCode == EPIPE }
        if let channel = error as? ChannelError { return channel == .ioOnClosedChannel || channel == .eof }
        return false
    }

    private func lease(_ key: Key) -> UpstreamConnection? {
        idle.withLock { idle in
            while let connection = idle[key]?.popLast() {
                if !connection.isClosed { return connection }
            }
            return nil
        }
    }

    /// Back to the pool after a complete answer; closed when the pool for its key is full.
    func release(_ connection: UpstreamConnection, key: Key) {
        let kept = idle.withLock { idle in
            var list = idle[key, default: []]
            list.removeAll { $0.isClosed }
            guard list.count < Self.maxIdlePerKey else { return false }
            list.append(connection)
            idle[key] = list
            return true
        }
        connection.onLoop {
            if kept {
                connection.park(idleTimeout: Self.idleTimeout)
            } else {
                connection.abandon()
            }
        }
    }

    private func connect(_ key: Key, loop: any EventLoop, timeout: TimeAmount) async throws -> UpstreamConnection {
        let handler = UpstreamConnection(eventLoop: loop)
        do {
            _ = try await ClientBootstrap(group: loop)
                .connectTimeout(timeout)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelOption(.autoRead, value: false)
                .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator.dataPlane)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: key.host, port: key.port)
                .get()
        } catch ChannelError.connectTimeout {
            throw HTTPClientError.connectTimeout
        }
        return handler
    }

    /// Closes every idle connection (shutdown).
    func closeAll() {
        let all = idle.withLock { idle in
            defer { idle = [:] }
            return idle.values.flatMap { $0 }
        }
        for connection in all { connection.onLoop { connection.abandon() } }
    }
}

/// One request's hold on a connection: returned to the pool when its answer was read to the
/// end, closed when it was not (the reader gave up, failed or was cancelled).
final class UpstreamLease: @unchecked Sendable {
    let connection: UpstreamConnection
    let pool: UpstreamHTTP1Pool
    let key: UpstreamHTTP1Pool.Key
    var keepAlive: Bool
    private var done = false

    init(connection: UpstreamConnection, pool: UpstreamHTTP1Pool, key: UpstreamHTTP1Pool.Key, keepAlive: Bool) {
        self.connection = connection
        self.pool = pool
        self.key = key
        self.keepAlive = keepAlive
    }

    /// A reader that stopped before the end (a stream relay stops at `[DONE]`) leaves the
    /// connection reusable when the whole answer has in fact arrived; otherwise it is closed.
    deinit {
        guard !done else { return }
        let (connection, pool, key, keepAlive) = (connection, pool, key, keepAlive)
        connection.onLoop {
            if keepAlive && connection.answerComplete {
                pool.release(connection, key: key)
            } else {
                connection.abandon()
            }
        }
    }

    /// Runs `body` on the connection's event loop (directly when already there, as usual).
    func onLoop<T: Sendable>(_ body: @escaping @Sendable () -> T) async throws -> T {
        if connection.eventLoop.inEventLoop { return body() }
        return try await connection.eventLoop.submit(body).get()
    }

    /// The next part; a cancelled caller closes the connection (the upstream sees the request end).
    func next(deadline: NIODeadline? = nil) async throws -> HTTPClientResponsePart? {
        let connection = connection
        let future: EventLoopFuture<HTTPClientResponsePart?>
        if connection.eventLoop.inEventLoop {
            future = connection.next(deadline: deadline)
        } else {
            future = connection.eventLoop.flatSubmit { connection.next(deadline: deadline) }
        }
        return try await withTaskCancellationHandler {
            try await future.get()
        } onCancel: {
            // Always queued, never run here: a cancellation handler runs inside the runtime's
            // cancellation of this task, and failing the future would resume the same task from
            // within it (seen as a whole-process stall under load).
            connection.eventLoop.execute { connection.abandon() }
        }
    }

    /// The answer ended: the connection goes back to the pool (if both sides keep it alive).
    func finish() {
        guard !done else { return }
        done = true
        if keepAlive, !connection.isClosed {
            pool.release(connection, key: key)
        } else {
            let connection = connection
            connection.onLoop { connection.abandon() }
        }
    }
}

/// The body of an answer from ``UpstreamHTTP1Pool``: the connection's body parts until its end.
struct UpstreamResponseBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let lease: UpstreamLease

    struct AsyncIterator: AsyncIteratorProtocol {
        let lease: UpstreamLease
        var ended = false

        mutating func next() async throws -> ByteBuffer? {
            try await next(deadline: nil)
        }

        /// The next bytes, failing with ``UpstreamConnection/ReadDeadlineExceeded`` when none
        /// came by `deadline`.
        mutating func next(deadline: NIODeadline?) async throws -> ByteBuffer? {
            while !ended {
                switch try await lease.next(deadline: deadline) {
                case .body(let buffer)?:
                    return buffer
                case .end?:
                    ended = true
                    lease.finish()
                case .head?:
                    continue
                case nil:
                    throw HTTPClientError.remoteConnectionClosed
                }
            }
            return nil
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(lease: lease) }
}

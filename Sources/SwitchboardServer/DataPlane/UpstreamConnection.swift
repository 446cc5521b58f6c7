import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// One pooled HTTP/1.1 connection to a plain-HTTP upstream, as the last handler of its channel.
///
/// The request's task runs on the connection's event loop (the pool connects on the inbound
/// request's loop), so every call here is a direct call, not a hop. Reading is pulled: the
/// channel does not auto-read, and the next read is issued only when the caller asks for the
/// next response part, so a slow client slows the upstream instead of filling memory.
///
/// Timeouts are one scheduled task at a time, not one per chunk: `headDeadline` (the response
/// head is due by then) and `readTimeout` (the longest silence between two reads), checked when
/// the task fires and re-armed for the next time either could expire.
final class UpstreamConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let eventLoop: any EventLoop
    private var context: ChannelHandlerContext?
    /// Parts read but not yet asked for.
    private var pending = CircularBuffer<HTTPClientResponsePart>(initialCapacity: 4)
    private var waiter: EventLoopPromise<HTTPClientResponsePart?>?
    private var failure: (any Error)?
    private(set) var isClosed = false
    /// A request was sent and its response has not ended.
    private(set) var inFlight = false
    /// Whether any byte of the current response arrived (a reused connection the upstream had
    /// already closed fails before any).
    private(set) var receivedAny = false
    /// The last request's answer arrived whole and nothing went wrong: the connection can serve
    /// the next one.
    var answerComplete: Bool { !inFlight && failure == nil && !isClosed }
    private var headDeadline: NIODeadline?
    /// The reader's own limit on the read it waits for (a stream's first-token deadline).
    private var readDeadline: NIODeadline?
    private var readTimeout: TimeAmount?
    private var lastRead = NIODeadline.now()
    private var timer: Scheduled<Void>?
    private var idleClose: Scheduled<Void>?

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// The context holds this handler: keeping it after the channel is gone would keep both
    /// (and the channel's pipeline) alive for as long as the pool or a timer holds this object.
    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        receivedAny = true
        lastRead = .now()
        if case .head = part { headDeadline = nil }
        if case .end = part { finishResponse() }
        if let waiter {
            self.waiter = nil
            readDeadline = nil
            waiter.succeed(part)
        } else {
            pending.append(part)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // A read that brought only part of a message: the caller is still waiting.
        if waiter != nil { context.read() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        timer?.cancel()
        idleClose?.cancel()
        if inFlight {
            fail(HTTPClientError.remoteConnectionClosed)
        } else if let waiter {
            self.waiter = nil
            waiter.succeed(nil)
        }
        context.fireChannelInactive()
    }

    // MARK: - Requests (on the event loop)

    /// Writes a request and arms its timeouts. The caller then reads parts with ``next()``.
    func send(_ head: HTTPRequestHead, body: ByteBuffer, headDeadline: NIODeadline, readTimeout: TimeAmount) {
        eventLoop.preconditionInEventLoop()
        idleClose?.cancel()
        idleClose = nil
        guard let context, !isClosed else {
            failure = HTTPClientError.remoteConnectionClosed
            return
        }
        inFlight = true
        receivedAny = false
        failure = nil
        pending.removeAll(keepingCapacity: true)
        self.headDeadline = headDeadline
        self.readTimeout = readTimeout
        lastRead = .now()
        arm()
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// The next response part; `nil` when the connection closed with no response in flight.
    /// Waiting past `deadline` fails the request with ``ReadDeadlineExceeded`` (no task is
    /// started for it: the connection's one timer covers it).
    func next(deadline: NIODeadline? = nil) -> EventLoopFuture<HTTPClientResponsePart?> {
        eventLoop.preconditionInEventLoop()
        if !pending.isEmpty { return eventLoop.makeSucceededFuture(pending.removeFirst()) }
        if let failure { return eventLoop.makeFailedFuture(failure) }
        if isClosed { return eventLoop.makeSucceededFuture(nil) }
        let promise = eventLoop.makePromise(of: HTTPClientResponsePart?.self)
        waiter = promise
        if let deadline, inFlight {
            readDeadline = deadline
            arm()
        }
        context?.read()
        return promise.futureResult
    }

    /// A read waited past the deadline its reader gave (see ``next(deadline:)``).
    struct ReadDeadlineExceeded: Error {}

    /// Ends the request in flight and closes the connection (the caller gave up: cancelled, or
    /// stopped reading before the end).
    func abandon(_ error: any Error = HTTPClientError.cancelled) {
        eventLoop.preconditionInEventLoop()
        fail(error)
    }

    /// Back in the pool: one read stays posted so that the upstream closing it is noticed, and
    /// it closes itself after `idleTimeout` unused.
    func park(idleTimeout: TimeAmount) {
        eventLoop.preconditionInEventLoop()
        guard !isClosed else { return }
        idleClose = eventLoop.scheduleTask(in: idleTimeout) { [weak self] in self?.context?.close(promise: nil) }
        context?.read()
    }

    /// Runs `body` on the event loop: at once when already there (the usual case), else queued.
    func onLoop(_ body: @escaping @Sendable () -> Void) {
        if eventLoop.inEventLoop { body() } else { eventLoop.execute(body) }
    }

    // MARK: - Internals

    private func finishResponse() {
        inFlight = false
        headDeadline = nil
        readDeadline = nil
        readTimeout = nil
        timer?.cancel()
        timer = nil
    }

    private func fail(_ error: any Error) {
        if failure == nil { failure = error }
        inFlight = false
        timer?.cancel()
        timer = nil
        if let waiter {
            self.waiter = nil
            waiter.fail(failure ?? error)
        }
        if !isClosed { context?.close(promise: nil) }
    }

    private func arm() {
        timer?.cancel()
        var due = NIODeadline.distantFuture
        if let headDeadline { due = min(due, headDeadline) }
        if let readDeadline { due = min(due, readDeadline) }
        if let readTimeout { due = min(due, lastRead + readTimeout) }
        guard due != .distantFuture else { return }
        timer = eventLoop.scheduleTask(deadline: due) { [weak self] in self?.fire() }
    }

    private func fire() {
        timer = nil
        guard inFlight else { return }
        let now = NIODeadline.now()
        if let headDeadline, now >= headDeadline {
            fail(HTTPClientError.deadlineExceeded)
        } else if let readDeadline, now >= readDeadline, waiter != nil {
            fail(ReadDeadlineExceeded())
        } else if let readTimeout, now >= lastRead + readTimeout {
            fail(HTTPClientError.readTimeout)
        } else {
            arm()
        }
    }
}

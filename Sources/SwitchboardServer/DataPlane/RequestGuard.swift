import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import SwitchboardCore

/// Guards one HTTP/1 proxy connection against hostile or broken clients (``ClientLimits``):
/// a request head that takes too long (slowloris), a body that stalls while the gateway reads
/// it, and bytes the HTTP parser refuses (smuggling shapes: `Content-Length` with
/// `Transfer-Encoding`, duplicate or non-numeric lengths, bad chunk sizes; oversized heads).
///
/// It has two sides sharing this state, both on the connection's event loop: ``ByteSide``
/// before the HTTP decoder sees raw bytes and the channel's read requests; ``PartSide`` after
/// it sees request parts, parser errors and the response parts written.
final class RequestGuard {
    enum Phase {
        /// Between requests: waiting for the next head (the idle timeout applies until its
        /// first byte arrives).
        case awaitingHead
        /// A head has arrived; its body is being read until `.end`.
        case body
    }

    let limits: ClientLimits
    var phase = Phase.awaitingHead
    /// Responses whose head was read but whose `.end` has not been written.
    var responsesOpen = 0
    /// Set by a parser error in the middle of a request: the answer says `Connection: close`
    /// and the connection closes after it (the bytes that follow cannot be trusted).
    var closeAfterResponse = false
    /// A malformed request was answered by the guard itself: later errors are ignored.
    var rejected = false
    /// When the first byte of the head being awaited arrived (`nil`: none yet).
    var headStarted: NIODeadline?
    var headTimer: Scheduled<Void>?
    var bodyTimer: Scheduled<Void>?

    init(limits: ClientLimits) {
        self.limits = limits
    }

    /// The two handlers, for the front of the pipeline and for after the HTTP codec.
    static func handlers(_ limits: ClientLimits) -> (ByteSide, PartSide) {
        let state = RequestGuard(limits: limits)
        return (ByteSide(state), PartSide(state))
    }

    /// Closes after an answer that leaves unread bytes behind (a rejected head, a malformed
    /// body): the output first, then, after a second of reading and dropping what the client
    /// still sends, the connection. Closing at once would reset it, and a client still sending
    /// would lose the answer (nginx's lingering close).
    func lingeringClose(_ channel: any Channel) {
        guard !closing else { return }
        closing = true
        rejected = true
        cancelTimers()
        channel.close(mode: .output, promise: nil)
        channel.eventLoop.scheduleTask(in: Self.linger) { channel.close(promise: nil) }
    }

    static let linger: TimeAmount = .seconds(1)
    /// A lingering close is under way (it runs once).
    private var closing = false

    /// The head deadline passed: close, unless a response is still being written (a stray
    /// byte after a request, or bytes the parser no longer reads after an `Upgrade` request);
    /// then the connection closes after that response instead of cutting it.
    func headTimedOut(_ channel: any Channel) {
        headTimer = nil
        if responsesOpen > 0 {
            closeAfterResponse = true
            rejected = true
        } else {
            // Nothing is answered: a client this slow may not even read it.
            channel.close(promise: nil)
        }
    }

    func cancelTimers() {
        headTimer?.cancel()
        headTimer = nil
        bodyTimer?.cancel()
        bodyTimer = nil
    }

    /// Before the HTTP decoder: starts the head deadline at a request's first byte, and the
    /// body deadline whenever the gateway asks for more body bytes (not while it is busy and
    /// reads nothing, which is not the client's fault).
    final class ByteSide: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        typealias OutboundIn = NIOAny
        typealias OutboundOut = NIOAny

        let state: RequestGuard

        init(_ state: RequestGuard) {
            self.state = state
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            // After a rejection, what the client still sends is dropped until the close.
            if state.rejected { return }
            // Body bytes arrived: the body's deadline starts again at the next read request.
            state.bodyTimer?.cancel()
            state.bodyTimer = nil
            if state.phase == .awaitingHead, state.headStarted == nil { state.headStarted = .now() }
            context.fireChannelRead(data)
        }

        /// The head deadline is armed only when a read ends with a head still incomplete: a
        /// head that arrives whole (nearly every one) costs no timer.
        func channelReadComplete(context: ChannelHandlerContext) {
            if state.phase == .awaitingHead, let started = state.headStarted, state.headTimer == nil,
                !state.rejected
            {
                let channel = context.channel
                let bound = NIOLoopBound(state, eventLoop: context.eventLoop)
                state.headTimer = context.eventLoop.scheduleTask(
                    deadline: started + .milliseconds(Int64(state.limits.headerTimeoutMs))
                ) { bound.value.headTimedOut(channel) }
            }
            context.fireChannelReadComplete()
        }

        func read(context: ChannelHandlerContext) {
            if state.phase == .body, state.bodyTimer == nil {
                let channel = context.channel
                state.bodyTimer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(state.limits.bodyTimeoutMs))) {
                    channel.close(promise: nil)
                }
            }
            context.read()
        }

        func channelInactive(context: ChannelHandlerContext) {
            state.cancelTimers()
            context.fireChannelInactive()
        }

        /// The server closed its output (an answer with `Connection: close`): nothing more
        /// will be answered, so the connection closes after the linger, even if the client
        /// sent (part of) another request and went silent.
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case ChannelEvent.outputClosed = event { state.lingeringClose(context.channel) }
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// After the HTTP codec: follows each request's phases and answers what the parser refuses.
    final class PartSide: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        typealias OutboundIn = HTTPResponsePart
        typealias OutboundOut = HTTPResponsePart

        let state: RequestGuard

        init(_ state: RequestGuard) {
            self.state = state
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                state.headTimer?.cancel()
                state.headTimer = nil
                state.headStarted = nil
                state.phase = .body
                state.responsesOpen += 1
                // After an upgrade request the parser reads nothing more: the connection
                // closes after this answer (Switchboard upgrades nothing).
                if head.headerFields[.connection].map({ ASCII.contains($0, "upgrade") }) == true {
                    state.closeAfterResponse = true
                }
            case .body:
                break
            case .end:
                state.bodyTimer?.cancel()
                state.bodyTimer = nil
                state.phase = .awaitingHead
                state.headStarted = nil
            }
            context.fireChannelRead(data)
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            switch unwrapOutboundIn(data) {
            case .head(var head) where state.closeAfterResponse:
                head.headerFields[.connection] = "close"
                context.write(wrapOutboundOut(.head(head)), promise: promise)
            case .end:
                state.responsesOpen -= 1
                if state.closeAfterResponse, state.responsesOpen <= 0 {
                    let channel = context.channel
                    let written = context.eventLoop.makePromise(of: Void.self)
                    let state = NIOLoopBound(self.state, eventLoop: context.eventLoop)
                    written.futureResult.whenComplete { _ in state.value.lingeringClose(channel) }
                    written.futureResult.cascade(to: promise)
                    context.writeAndFlush(data, promise: written)
                } else {
                    context.write(data, promise: promise)
                }
            default:
                context.write(data, promise: promise)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            guard let parserError = error as? HTTPParserError else { return context.fireErrorCaught(error) }
            if state.rejected { return }
            state.cancelTimers()
            guard state.phase == .awaitingHead, state.responsesOpen == 0 else {
                // Mid-request: the route's handler is reading the body and answers (see
                // ``MalformedRequest``); a handler that did not read it has answered already.
                // Not an `HTTPParserError` any more, so Hummingbird does not answer a second
                // time when it drains the body: it closes the connection.
                state.closeAfterResponse = true
                return context.fireErrorCaught(MalformedRequest(parserError))
            }
            state.rejected = true
            let headerOverflow = parserError == .headerOverflow
            let message =
                headerOverflow
                ? "request header fields too large: at most \(state.limits.maxHeaders) fields of at most \(state.limits.maxHeaderBytes) bytes in all"
                : "malformed request: \(MalformedRequest.describe(parserError))"
            let body = ByteBuffer(bytes: JSONValue.object(["error_msg": .string(message)]).serializedBytes())
            let head = HTTPResponse(
                status: headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest,
                headerFields: [
                    .contentType: "application/json", .contentLength: String(body.readableBytes),
                    .connection: "close",
                ])
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(body)), promise: nil)
            let channel = context.channel
            let state = NIOLoopBound(self.state, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in state.value.lingeringClose(channel) }
        }
    }
}

/// Bytes the HTTP parser refused in the middle of a request's body (a bad chunk size, a
/// truncated chunk): the data plane answers 400 naming it, and the connection is closed.
struct MalformedRequest: Error, CustomStringConvertible {
    let parserError: HTTPParserError

    init(_ parserError: HTTPParserError) {
        self.parserError = parserError
    }

    var description: String { "malformed request body: \(Self.describe(parserError))" }

    /// The parser's problem in words a client can act on.
    static func describe(_ error: HTTPParserError) -> String {
        switch error {
        case .invalidChunkSize: "invalid chunk size"
        case .invalidContentLength: "invalid Content-Length"
        case .unexpectedContentLength: "Content-Length together with Transfer-Encoding, or more than one"
        case .headerOverflow: "request header fields too large"
        case .invalidHeaderToken: "invalid character in a header"
        case .invalidMethod: "invalid method"
        case .invalidURL: "invalid request target"
        case .invalidVersion: "invalid HTTP version"
        case .lfExpected: "malformed line ending"
        case .invalidEOFState: "the connection ended in the middle of the request"
        case .invalidConstant, .invalidCharactersUsed, .strictModeAssertion: "malformed request line or header"
        // llhttp's code for `Content-Length` together with `Transfer-Encoding`, among others.
        default: "conflicting or invalid framing (Content-Length with Transfer-Encoding, or a malformed header)"
        }
    }
}

import HummingbirdCore
import Logging
import NIOCore
import SwitchboardCore
import Synchronization

/// A Swift concurrency task executor that runs jobs on one NIO event loop. A connection's
/// request handling prefers the event loop its socket lives on, so reading the request,
/// the plugin pipeline, the upstream call (AsyncHTTPClient picks the current loop) and writing
/// the response happen on one thread instead of hopping between the event loops and the
/// global concurrency pool at every `await` (the hops were ~20 % of a chat request's CPU).
/// Nothing on the data plane blocks, which running on an event loop requires.
final class EventLoopExecutor: TaskExecutor, Sendable {
    let eventLoop: any EventLoop

    private init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    private static let executors = Mutex<[ObjectIdentifier: EventLoopExecutor]>([:])

    /// The executor of `eventLoop` (one per loop, made on first use).
    static func of(_ eventLoop: any EventLoop) -> EventLoopExecutor {
        let key = ObjectIdentifier(eventLoop)
        return executors.withLock { executors in
            if let existing = executors[key] { return existing }
            let made = EventLoopExecutor(eventLoop)
            executors[key] = made
            return made
        }
    }
}

/// Hummingbird's HTTP/1 child channel, with each connection handled on its own event loop
/// (see ``EventLoopExecutor``), watched for the client closing (see ``ConnectionWatch``),
/// counted against `proxy.max_connections` and guarded against hostile clients
/// (see ``RequestGuard``).
struct EventLoopHTTP1Channel: ServerChildChannel {
    let inner: HTTP1Channel
    let limits: ClientLimits
    let limiter: ConnectionLimiter

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        let (bytes, parts) = RequestGuard.handlers(limits)
        return channel.eventLoop.makeCompletedFuture {
            try channel.syncOptions?.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator.dataPlane)
            let operations = channel.pipeline.syncOperations
            try operations.addHandler(ConnectionCloseObserver(), position: .first)
            try operations.addHandler(bytes)
            if !limiter.admit(channel) { ConnectionLimiter.refuse(channel, guard: bytes.state) }
        }.flatMap {
            inner.setup(channel: channel, logger: logger)
        }.flatMapThrowing { value in
            try channel.pipeline.syncOperations.addHandler(
                parts,
                position: .before(try channel.pipeline.syncOperations.handler(type: HTTPConnectionStateHandler.self)))
            return value
        }
    }

    func handle(value: HTTP1Channel.Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopExecutor.of(value.channel.eventLoop)) {
            // On the connection's event loop now: its watch is looked up once, not per request.
            let watch = try? value.channel.pipeline.syncOperations.handler(type: ConnectionCloseObserver.self).watch
            await ConnectionWatch.$current.withValue(watch) {
                await inner.handle(value: value, logger: logger)
            }
        }
    }
}

extension HTTPServerBuilder {
    /// `http1(configuration:)` with connections handled on their event loops, limited and
    /// guarded as ``EventLoopHTTP1Channel`` says.
    static func http1OnEventLoop(
        configuration: HTTP1Channel.Configuration, limits: ClientLimits, limiter: ConnectionLimiter
    ) -> HTTPServerBuilder {
        .init { responder in
            EventLoopHTTP1Channel(
                inner: HTTP1Channel(responder: responder, configuration: configuration), limits: limits,
                limiter: limiter)
        }
    }
}

extension HTTP1Channel.Configuration {
    /// The proxy listeners' HTTP/1 settings: the idle timeout, and the head limits of
    /// `limits` enforced by the parser (a head over them is answered 431 by ``RequestGuard``).
    static func proxy(idleTimeout: TimeAmount, limits: ClientLimits) -> Self {
        .init(
            idleTimeout: idleTimeout,
            httpDecoderConfiguration: .init(
                maxHeaderFieldSize: limits.maxHeaderBytes, maxHeaderListSize: limits.maxHeaderBytes,
                maxHeaderFieldCount: limits.maxHeaders))
    }
}

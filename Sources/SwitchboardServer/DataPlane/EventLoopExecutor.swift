import HummingbirdCore
import Logging
import NIOCore
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
/// (see ``EventLoopExecutor``) and watched for the client closing (see ``ConnectionWatch``).
struct EventLoopHTTP1Channel: ServerChildChannel {
    let inner: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1Channel.Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.syncOptions?.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator.dataPlane)
            try channel.pipeline.syncOperations.addHandler(ConnectionCloseObserver(), position: .first)
        }.flatMap { inner.setup(channel: channel, logger: logger) }
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
    /// `http1(configuration:)` with connections handled on their event loops.
    static func http1OnEventLoop(configuration: HTTP1Channel.Configuration) -> HTTPServerBuilder {
        .init { responder in
            EventLoopHTTP1Channel(inner: HTTP1Channel(responder: responder, configuration: configuration))
        }
    }
}

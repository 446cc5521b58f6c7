import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOHTTP2
import NIOSSL
import NIOTLS
import SwitchboardCore
import Synchronization

/// A data-plane connection on a TLS listener: the client's SNI picks the certificate from the
/// current configuration snapshot (so a new `ssls` object is served from the next handshake),
/// then ALPN picks HTTP/2 or HTTP/1.1 (also for clients that offer no ALPN).
///
/// Pipeline: connection watch, SNI reader (buffers the ClientHello until a certificate is
/// chosen), TLS, protocol negotiation, then Hummingbird's HTTP/1 or HTTP/2 channel.
struct TLSHTTPChannel: ServerChildChannel {
    typealias Negotiated = NIONegotiatedHTTPVersion<HTTP1Channel.Value, HTTP2Channel.Value>

    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        let channel: any Channel
        let connection: TLSConnection
    }

    let http1: HTTP1Channel
    let http2: HTTP2Channel
    let certificates: @Sendable () -> CertificateTable
    let limits: ClientLimits
    let limiter: ConnectionLimiter
    /// A client that has not finished its handshake by then is disconnected (Hummingbird's
    /// idle timeout only starts once a protocol is chosen).
    static let handshakeTimeout: TimeAmount = .seconds(10)

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let operations = channel.pipeline.syncOperations
            try channel.syncOptions?.setOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator.dataPlane)
            try operations.addHandler(ConnectionCloseObserver(), position: .first)
            if !limiter.admit(channel) { channel.close(promise: nil) }
            let http1 = self.http1
            let limits = self.limits
            let http2 = self.http2
            let negotiation = NIOTypedApplicationProtocolNegotiationHandler<Negotiated> { result, channel in
                switch result {
                case .negotiated("h2"):
                    return http2.setup(channel: channel, logger: logger).map { .http2($0) }
                case .negotiated("http/1.1"), .fallback:
                    // HTTP/1 over TLS is guarded like plain HTTP/1 (see ``RequestGuard``):
                    // the byte side after TLS, the part side after the HTTP codec.
                    let (bytes, parts) = RequestGuard.handlers(limits)
                    do {
                        try channel.pipeline.syncOperations.addHandler(bytes)
                    } catch {
                        return channel.eventLoop.makeFailedFuture(error)
                    }
                    return http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
                        let operations = channel.pipeline.syncOperations
                        try operations.addHandler(
                            parts, position: .before(try operations.handler(type: HTTPConnectionStateHandler.self)))
                        return .http1_1(value)
                    }
                case .negotiated:
                    return channel.close().flatMapThrowing { throw NIOHTTP2Errors.invalidALPNToken() }
                }
            }
            let table = certificates()
            let connection = TLSConnection()
            let sni = ByteToMessageHandler(
                SNIHandler { result in
                    var name: String?
                    if case .hostname(let hostname) = result {
                        name = hostname.hasSuffix(".") ? String(hostname.dropLast()) : hostname
                    }
                    guard let entry = table.entry(for: name) else {
                        logger.debug("TLS handshake refused: no certificate for \(name ?? "a client without SNI")")
                        channel.close(promise: nil)
                        return channel.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
                    }
                    connection.certificateID.withLock { $0 = entry.id }
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLServerHandler(context: entry.context), position: .before(negotiation))
                    }
                })
            try operations.addHandler(sni)
            try operations.addHandler(negotiation)
            let timeout = channel.eventLoop.scheduleTask(in: Self.handshakeTimeout) { channel.close(promise: nil) }
            negotiation.protocolNegotiationResult.whenComplete { _ in timeout.cancel() }
            return Value(
                negotiated: negotiation.protocolNegotiationResult, channel: channel, connection: connection)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopExecutor.of(value.channel.eventLoop)) {
            guard let negotiated = try? await value.negotiated.get() else {
                value.channel.close(promise: nil)
                return
            }
            await TLSConnection.$current.withValue(value.connection) {
                switch negotiated {
                case .http1_1(let connection):
                    let watch = try? value.channel.pipeline.syncOperations.handler(type: ConnectionCloseObserver.self)
                        .watch
                    await ConnectionWatch.$current.withValue(watch) {
                        await http1.handle(value: connection, logger: logger)
                    }
                case .http2(let connection):
                    // Each stream has its own watch (a client may cancel one stream and keep the
                    // connection): no connection-wide one here.
                    await http2.handle(value: connection, logger: logger)
                }
            }
        }
    }
}

extension HTTPServerBuilder {
    /// TLS with SNI-picked certificates and HTTP/2 or HTTP/1.1 by ALPN, handled on the
    /// connection's event loop like ``http1OnEventLoop(configuration:)``.
    static func tlsOnEventLoop(
        configuration: HTTP1Channel.Configuration, certificates: @escaping @Sendable () -> CertificateTable,
        limits: ClientLimits, limiter: ConnectionLimiter
    ) -> HTTPServerBuilder {
        .init { responder in
            var http2Configuration = HTTP2ChannelConfiguration(
                idleTimeout: .seconds(75), gracefulCloseTimeout: .seconds(30),
                streamConfiguration: .init(
                    additionalChannelHandlers: [ConnectionCloseObserver()], idleTimeout: configuration.idleTimeout))
            http2Configuration.maxAgeTimeout = nil
            return TLSHTTPChannel(
                http1: HTTP1Channel(responder: responder, configuration: configuration),
                http2: HTTP2Channel(responder: responder, configuration: http2Configuration),
                certificates: certificates, limits: limits, limiter: limiter)
        }
    }
}

/// What a TLS connection's handshake chose, for its requests: the `ssls` object whose
/// certificate the client's SNI picked.
final class TLSConnection: Sendable {
    let certificateID = Mutex<String?>(nil)

    /// The connection whose requests the current task handles (HTTP/2 streams inherit it).
    @TaskLocal static var current: TLSConnection?
}

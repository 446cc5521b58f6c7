import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import SwitchboardCore
import Synchronization

/// The data plane: matches the route in the current snapshot, runs the plugin pipeline and
/// proxies, then runs the log phase once the response body has been sent.
public struct DataPlaneResponder: HTTPResponder {
    public typealias Context = GatewayRequestContext

    let holder: SnapshotHolder
    let proxy: UpstreamProxy
    let accessLogger: AccessLogger?
    let maxBodySize: Int
    let maxBodySizeBeforeAuth: Int
    let metrics: GatewayMetrics
    /// The dashboard's series and request trace (`nil`: not kept).
    var telemetry: Telemetry?
    let logger: Logger
    /// Whether this responder serves a TLS listener (`$scheme`, `X-Forwarded-Proto`).
    var tls = false
    /// The shutdown's drain: a request still waiting at its deadline is answered 503.
    var drain = ShutdownDrain()

    public init(
        holder: SnapshotHolder, proxy: UpstreamProxy, accessLogger: AccessLogger?, maxBodySize: Int,
        maxBodySizeBeforeAuth: Int = 1024 * 1024, metrics: GatewayMetrics, logger: Logger
    ) {
        self.maxBodySizeBeforeAuth = min(maxBodySizeBeforeAuth, maxBodySize)
        self.holder = holder
        self.proxy = proxy
        self.accessLogger = accessLogger
        self.maxBodySize = maxBodySize
        self.metrics = metrics
        self.logger = logger
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        var request = request
        // Cookies are not bound to ports: a browser signed in to the dashboard (admin listener)
        // also sends its session cookie here. It never reaches a route's plugins or upstream.
        if let cookie = request.headers[.cookie], cookie.contains(DashboardSessions.cookieName) {
            let kept = cookie.split(separator: ";").filter {
                !$0.trimmingCharacters(in: .whitespaces).hasPrefix(DashboardSessions.cookieName + "=")
            }
            var head = request.head
            head.headerFields[.cookie] = kept.isEmpty ? nil : kept.joined(separator: ";")
            request = Request(head: head, body: request.body)
        }
        let exchange = Exchange(
            request: request, remote: context.remoteAddress, snapshot: holder.load(), maxBodySize: maxBodySize)
        exchange.channel = context.channel
        exchange.isTLS = tls
        if tls { exchange.tlsCertificateID = TLSConnection.current?.certificateID.withLock { $0 } }
        // Handled in a task of its own, which ends with the handling: a task's allocator keeps
        // the memory its deepest async frames needed (the plugins, the attempts) until the task
        // ends, and a stream's relay then runs for minutes in the connection's task.
        let work = Task(executorPreference: MultiThreadedEventLoopGroup.currentEventLoop.map(EventLoopExecutor.of)) {
            var slots: [PluginSlot] = []
            do {
                return (Result<Response, any Error>.success(try await self.handle(exchange, slots: &slots)), slots)
            } catch {
                return (.failure(error), slots)
            }
        }
        // At the shutdown's deadline a request still being handled is cancelled (a stream's
        // relay, which runs later in the response body, has its own watch: see
        // `AIProxyHandler.pumpUntilShutdown`).
        let drainToken = drain.deadline.onClose { work.cancel() }
        let (handled, slots) = await withTaskCancellationHandler {
            await work.value
        } onCancel: {
            work.cancel()
        }
        drain.deadline.remove(drainToken)
        var response: Response
        do {
            // A request that finished is answered as it finished, even at the deadline.
            response = try handled.get()
        } catch let error as MalformedRequest {
            // The parser refused the body (a bad chunk size): the connection is closed after
            // this answer (see ``RequestGuard``).
            response = GatewayResponse.json(.badRequest, ["error_msg": .string(error.description)])
        } catch let error as BodyTooLarge {
            response = GatewayResponse.json(
                .contentTooLarge,
                ["error_msg": .string("request body is larger than the limit of \(error.limit) bytes")])
        } catch  where drain.deadlinePassed {
            response = GatewayResponse.json(.serviceUnavailable, ["error_msg": "the gateway is shutting down"])
        } catch {
            logger.error("request failed: \(error)", metadata: ["request_id": .string(exchange.requestID)])
            response = GatewayResponse.json(.internalServerError, ["error_msg": "internal error"])
        }
        response.headers[.xRequestID] = exchange.requestID
        exchange.gatewayOverhead = exchange.elapsed - exchange.upstreamWait
        return finish(response, exchange: exchange, slots: slots)
    }

    private func handle(_ exchange: Exchange, slots: inout [PluginSlot]) async throws -> Response {
        let snapshot = exchange.snapshot
        // A host whose certificate requires a client certificate is served only on connections
        // whose handshake chose that certificate: otherwise a client could name another host in
        // its SNI (one without mutual TLS) and this one in its Host header.
        if exchange.isTLS, let entry = snapshot.certificates.entry(for: exchange.host),
            entry.requiresClientCertificate, entry.id != exchange.tlsCertificateID
        {
            return GatewayResponse.json(
                .misdirectedRequest,
                [
                    "error_msg": .string(
                        "misdirected request: \(exchange.host) requires a client certificate; connect with it as the TLS server name"
                    )
                ])
        }
        if exchange.pathEscapesRoot {
            return GatewayResponse.json(.badRequest, ["error_msg": "invalid request path: it climbs above the root"])
        }
        let routeRequest = RouteRequest(
            path: exchange.path, method: exchange.method, host: exchange.host,
            remoteAddress: IPAddress(exchange.remoteAddress))
        // The body is read before matching only when a route that could match reads
        // `post_arg.*`, and then only up to the (small) pre-authentication limit: an anonymous
        // client cannot make the gateway read and parse a large body for an unknown path.
        if snapshot.router.candidatesNeedBody(routeRequest),
            exchange.request.headers[.contentType].map({ ASCII.contains($0, "json") }) == true
        {
            _ = try await exchange.body(limit: maxBodySizeBeforeAuth)
            // A body that is not JSON just matches no `post_arg`.
            _ = try? await exchange.parsedJSONBody()
        }
        // Global rules run first in each phase, as in APISIX: their rewrite and access, then the
        // route's. They run for requests no route matches too (before the 404).
        let global = snapshot.globalRules
        slots = global
        guard let (route, parameters) = snapshot.router.matchWithParameters(routeRequest, variables: exchange) else {
            if let response = try await runGlobal(global, exchange) { return response }
            return GatewayResponse.json(.notFound, ["error_msg": "404 Route Not Found"])
        }
        exchange.route = route
        exchange.uriParameters = parameters
        if let response = try await runGlobal(global, exchange) { return response }
        var routeSlots = route.plugins
        slots = global + routeSlots
        for slot in routeSlots where runs(slot, exchange) {
            if let response = try await slot.handler.rewrite(exchange) { return response }
        }
        if let consumer = exchange.consumer {
            routeSlots = PluginRegistry.merge(route: routeSlots, consumer: consumer.plugins)
        }
        slots = global + routeSlots
        exchange.plugins = global.isEmpty ? routeSlots : routeSlots + global
        for slot in routeSlots where runs(slot, exchange) {
            if let response = try await slot.handler.access(exchange) { return response }
        }
        for slot in routeSlots where runs(slot, exchange) {
            if let response = try await slot.handler.proxy(exchange) { return response }
        }
        guard let upstream = route.upstream else {
            return GatewayResponse.json(
                .serviceUnavailable, ["error_msg": "missing upstream configuration in Route or Service"])
        }
        return await proxy.forward(exchange, to: upstream)
    }

    /// The rewrite and access phases of the global rules.
    private func runGlobal(_ global: [PluginSlot], _ exchange: Exchange) async throws -> Response? {
        for slot in global where runs(slot, exchange) {
            if let response = try await slot.handler.rewrite(exchange) { return response }
        }
        for slot in global where runs(slot, exchange) {
            if let response = try await slot.handler.access(exchange) { return response }
        }
        return nil
    }

    private func runs(_ slot: PluginSlot, _ exchange: Exchange) -> Bool {
        slot.filter?.evaluate(exchange) ?? true
    }

    /// Wraps the body so that bytes are counted and the log phase runs after the last byte was
    /// written (or the client went away).
    private func finish(_ response: Response, exchange: Exchange, slots: [PluginSlot]) -> Response {
        var response = response
        for field in exchange.responseHeaders { response.headers[field.name] = field.value }
        exchange.status = Int(response.status.code)
        let body = response.body
        let accessLogger = self.accessLogger
        let metrics = self.metrics
        let telemetry = self.telemetry
        let logPhase = LogPhase {
            for slot in slots { slot.handler.log(exchange) }
            metrics.record(exchange)
            telemetry?.record(exchange)
            accessLogger?.log(exchange)
        }
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            let counting = CountingWriter(base: writer, exchange: exchange)
            defer { logPhase() }
            try await body.write(counting)
        }
        return response
    }
}

/// The log phase of one request, run exactly once: after the body's last byte, or — when the
/// client left before the response head could be written, so the body never ran — when the
/// response is dropped. Plugins release what they hold there (quota reservations, breaker
/// trials, in-flight gauges), so it must not be skipped.
final class LogPhase: Sendable {
    private let run: @Sendable () -> Void
    private let done = Atomic(false)

    init(_ run: @escaping @Sendable () -> Void) {
        self.run = run
    }

    func callAsFunction() {
        if !done.exchange(true, ordering: .acquiringAndReleasing) { run() }
    }

    deinit { callAsFunction() }
}

/// Passes writes through and counts the body bytes for `$body_bytes_sent`.
struct CountingWriter: ResponseBodyWriter {
    var base: any ResponseBodyWriter
    let exchange: Exchange

    mutating func write(_ buffer: ByteBuffer) async throws {
        exchange.bodyBytesSent += buffer.readableBytes
        try await base.write(buffer)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await base.finish(trailingHeaders)
    }
}

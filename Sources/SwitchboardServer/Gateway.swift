import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import SwitchboardCore
import SwitchboardStore
import Synchronization
import UnixSignals

/// A whole Switchboard process: the store, the configuration manager, the data-plane and
/// Admin API listeners, and the store watcher, run as one service group.
public final class Gateway: Sendable {
    public let config: GatewayConfig
    public let manager: ConfigManager
    public let holder: SnapshotHolder
    public let registry: PluginRegistry
    let store: any ConfigStore
    let clients: UpstreamClients
    public let health: HealthRegistry
    public let metrics: GatewayMetrics
    /// What the dashboard shows: traffic series and the last requests.
    public let telemetry: Telemetry
    let accessLogWriter: AccessLogWriter?
    let accessLogFormat: LogFormat
    let adminKeyring: AdminKeyring
    let logger: Logger
    /// This process as a cluster node: a fresh id per start.
    let node: ClusterNode
    /// How often a cluster node heartbeats; three missed beats and it is gone from `/v1/cluster`.
    static let heartbeatInterval: Duration = .seconds(1)
    public static let version = "0.1.0"
    private let bound = Mutex<[String: Int]>([:])
    private let serviceGroup = Mutex<ServiceGroup?>(nil)
    private let readiness: AsyncStream<Void>.Continuation
    private let ready: AsyncStream<Void>
    /// Open client connections of the proxy listeners (`proxy.max_connections`).
    let connections: ConnectionLimiter
    /// The shutdown's drain (shared with the plugins through ``GatewayServices``).
    public var drain: ShutdownDrain { manager.compiler.services.drain }

    /// A listener that could not be started; the message names the address.
    public struct ListenError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Opens the store, loads the configuration and prepares the listeners. The admin key is
    /// generated on first start when none is configured, kept in the store, and printed once.
    public static func prepare(config: GatewayConfig, logger: Logger, registry: PluginRegistry? = nil)
        async throws -> Gateway
    {
        // A write to a pipe whose reader went away (stdout piped to a log shipper that died)
        // must fail with EPIPE, not kill the process with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        let format: LogFormat
        do { format = try LogFormat(config.accessLogFormat) } catch {
            throw GatewayConfig.Error("access_log.format: \(error)")
        }
        let store: any ConfigStore
        switch config.store {
        case .sqlite(let path): store = try await SQLiteConfigStore.open(path: path, logger: logger)
        case .file(let path): store = FileConfigStore(path: path, logger: logger)
        case .postgres(let dsn): store = try await PostgresConfigStore.open(dsn, logger: logger)
        }
        let holder = SnapshotHolder()
        let clients = UpstreamClients()
        let health = HealthRegistry(clients: clients, logger: logger)
        let metrics = GatewayMetrics()
        var services = GatewayServices(clients: clients, health: health, metrics: metrics, logger: logger)
        let shared = store as? any SharedQuotaCounters
        services.clusterQuotas = shared.map { ClusterQuotas(shared: $0, logger: logger) }
        let registry =
            registry ?? .builtIn(store: .init(location: store.location, sharesCounters: shared != nil))
        let manager = ConfigManager(
            store: store, registry: registry, holder: holder, services: services, keyring: config.dataEncryptionKeys,
            reservedEnvironment: config.environmentNames)
        do {
            try await manager.start(strict: !store.isWritable)
        } catch {
            try? await store.close()
            throw error
        }
        var keys = config.adminKeys.map { (key: $0.key, role: $0.role == .admin ? AdminKeyring.Role.admin : .viewer) }
        if keys.isEmpty {
            let key: String
            if let stored = try await store.metadata("admin_key") {
                key = stored
            } else {
                let generated = AdminKeyring.generateKey()
                // Nodes of a cluster starting together: the first one's key is kept, and only
                // the node that made it shows it.
                key = try await store.setMetadataIfAbsent("admin_key", generated)
                if key == generated {
                    let persisted = store.isWritable ? "kept in \(store.location)" : "valid until restart"
                    FileHandle.standardError.write(
                        Data(
                            "switchboard: no admin key configured; generated one (\(persisted)), shown only now:\n  \(key)\n"
                                .utf8))
                }
            }
            keys = [(key, .admin)]
        }
        var writer: AccessLogWriter?
        switch config.accessLog {
        case .off: writer = nil
        case .stdout:
            writer = try AccessLogWriter(
                path: nil, maxPending: config.accessLogBufferSize, onDrop: { metrics.accessLogLineDropped() })
        case .file(let path):
            do {
                writer = try AccessLogWriter(
                    path: path, maxPending: config.accessLogBufferSize, onDrop: { metrics.accessLogLineDropped() })
            } catch {
                throw GatewayConfig.Error("cannot open access log \(path): \(error)")
            }
        }
        return Gateway(
            config: config, manager: manager, holder: holder, registry: registry, store: store, clients: clients,
            health: health, metrics: metrics, accessLogWriter: writer, accessLogFormat: format,
            adminKeyring: AdminKeyring(keys),
            logger: logger)
    }

    private init(
        config: GatewayConfig, manager: ConfigManager, holder: SnapshotHolder, registry: PluginRegistry,
        store: any ConfigStore, clients: UpstreamClients, health: HealthRegistry, metrics: GatewayMetrics,
        accessLogWriter: AccessLogWriter?,
        accessLogFormat: LogFormat,
        adminKeyring: AdminKeyring, logger: Logger
    ) {
        self.config = config
        self.manager = manager
        self.holder = holder
        self.registry = registry
        self.store = store
        self.clients = clients
        self.health = health
        self.metrics = metrics
        self.telemetry = Telemetry(traceCapacity: config.traceCapacity)
        self.accessLogWriter = accessLogWriter
        self.accessLogFormat = accessLogFormat
        self.adminKeyring = adminKeyring
        self.logger = logger
        let suffix = String(UInt32.random(in: .min ... .max), radix: 16)
        self.node = ClusterNode(
            id: "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(suffix)",
            address: config.proxyListen.map(\.description).joined(separator: ", "), version: Self.version,
            startedAt: Date().timeIntervalSince1970, heartbeatAt: Date().timeIntervalSince1970, revision: -1)
        (self.ready, self.readiness) = AsyncStream.makeStream()
        self.connections = ConnectionLimiter(maximum: config.clientLimits.maxConnections)
    }

    /// How many listeners the gateway opens.
    private var listenerCount: Int {
        config.proxyListen.count + 1 + (config.controlListen == nil ? 0 : 1) + (config.prometheusListen == nil ? 0 : 1)
    }

    /// Whether the gateway takes traffic (`GET /v1/ready`): its configuration is loaded (it is,
    /// once the gateway exists), every listener is up, and it is not draining.
    func readinessProblem() -> String? {
        if drain.isDraining { return "draining" }
        let up = bound.withLock { $0.count }
        if up < listenerCount { return "listeners starting (\(up) of \(listenerCount) up)" }
        return nil
    }

    /// The port a listener is bound to, once it runs (`"proxy0"`, `"admin"`).
    public func port(_ listener: String) -> Int? {
        bound.withLock { $0[listener] }
    }

    /// Returns once every listener is accepting connections.
    public func waitUntilReady() async {
        let expected = listenerCount
        var count = 0
        for await _ in ready {
            count += 1
            if count >= expected { return }
        }
    }

    /// A listener. Data-plane connections are handled on their event loops (fewer thread hops
    /// per request, see ``EventLoopExecutor``); the admin side, whose store writes may wait on
    /// disk, stays on the global concurrency pool.
    private func application<R: HTTPResponder>(
        _ name: String, _ address: ListenAddress, _ responder: R, onEventLoop: Bool = false
    )
        -> ListenerService
    where R.Context == GatewayRequestContext {
        // Idle keep-alive connections (and clients that stop sending mid-request) are closed
        // after 75 s, nginx's keepalive_timeout, so slow clients cannot pin connections.
        let http: HTTP1Channel.Configuration =
            onEventLoop
            ? .proxy(idleTimeout: .seconds(75), limits: config.clientLimits) : .init(idleTimeout: .seconds(75))
        // Hummingbird announces each listener at info; the gateway prints one startup line of
        // its own once all are bound, so a failed start prints only the problem.
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .notice)
        let holder = self.holder
        let limits = config.clientLimits
        let server: HTTPServerBuilder =
            address.tls
            ? .tlsOnEventLoop(
                configuration: http, certificates: { holder.load().certificates }, limits: limits,
                limiter: connections)
            : onEventLoop
                ? .http1OnEventLoop(configuration: http, limits: limits, limiter: connections)
                : .http1(configuration: http)
        let app = Application(
            responder: responder,
            server: server,
            configuration: .init(
                address: .hostname(address.host, port: address.port), serverName: "Switchboard"),
            onServerRunning: { [self] channel in
                self.bound.withLock { $0[name] = channel.localAddress?.port ?? address.port }
                self.readiness.yield()
            },
            logger: serverLogger)
        return ListenerService(address: address, app: app)
    }

    /// Runs until SIGTERM/SIGINT (or cancellation), then shuts down gracefully.
    public func run(gracefulShutdownSignals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        let accessLogger = accessLogWriter.map {
            AccessLogger(format: accessLogFormat, writer: $0, json: config.accessLogJSON)
        }
        var dataPlane = DataPlaneResponder(
            holder: holder, proxy: UpstreamProxy(clients: clients), accessLogger: accessLogger,
            maxBodySize: config.proxyMaxBodySize, maxBodySizeBeforeAuth: config.proxyMaxBodySizeBeforeAuth,
            metrics: metrics, logger: logger)
        dataPlane.telemetry = telemetry
        dataPlane.drain = drain
        var admin = AdminResponder(
            manager: manager, keyring: adminKeyring, pluginNames: Array(registry.plugins.keys))
        let control = ControlResponder(
            health: health, cluster: store as? any ClusterMembership, node: node, storeLocation: store.location,
            window: Self.heartbeatInterval * 3, readiness: { [self] in self.readinessProblem() })
        admin.dashboard = DashboardResponder(
            keyring: adminKeyring, telemetry: telemetry, health: health, manager: manager,
            services: manager.compiler.services, cluster: { await control.clusterJSON() })
        // Services stop in reverse order, each after the one behind it has finished: the proxy
        // listeners, added last, stop first and together (see ``ProxyListeners``), while the
        // control listener (its `/v1/ready` answers 503 while draining), the Admin API and the
        // store watcher serve on until they have drained.
        var services: [any Service] = []
        if let listen = config.controlListen {
            services.append(application("control", listen, control))
        }
        var proxies: [ListenerService] = []
        for (i, address) in config.proxyListen.enumerated() {
            var responder = dataPlane
            responder.tls = address.tls
            proxies.append(application("proxy\(i)", address, responder, onEventLoop: true))
        }
        services.append(application("admin", config.adminListen, admin))
        if let prometheus = config.prometheusListen {
            let responder = MetricsResponder(metrics: metrics, health: health, path: config.prometheusPath)
            services.append(application("prometheus", prometheus, responder))
        }
        // SIGTERM/SIGINT drain (see ``stop()``); a second one exits at once.
        var signalled: Task<Void, Never>?
        if !gracefulShutdownSignals.isEmpty {
            let signals = await UnixSignalsSequence(trapping: gracefulShutdownSignals)
            signalled = Task { [self] in
                var first = true
                for await signal in signals {
                    if first {
                        first = false
                        self.logger.notice("\(signal) received: draining (a second signal exits at once)")
                        Task { await self.stop() }
                    } else {
                        FileHandle.standardError.write(Data("switchboard: second \(signal), exiting now\n".utf8))
                        // `_exit`: no atexit handlers or destructors, which could wait on the threads still serving.
                        _exit(1)
                    }
                }
            }
        }
        defer { signalled?.cancel() }
        // SIGUSR1 reopens the access log file (after log rotation moved it).
        var reopen: Task<Void, Never>?
        if let writer = accessLogWriter, case .file = config.accessLog {
            let signals = await UnixSignalsSequence(trapping: .sigusr1)
            reopen = Task {
                for await _ in signals { writer.reopen() }
            }
        }
        defer { reopen?.cancel() }
        services.append(StoreWatcher(store: store, manager: manager))
        if let sharing = store as? any FailureSharing {
            let health = self.health
            sharing.onSharedFailure { failure in health.applyShared(failure) }
            services.append(
                FailureSharingService(sharing: sharing, broadcast: health.broadcast, node: node.id, logger: logger))
        }
        // First in the group, so shut down last (services stop in reverse order): requests that
        // finish while the listeners drain still have their usage sent.
        if let quotas = manager.compiler.services.clusterQuotas {
            services.insert(ClusterQuotaService(quotas: quotas), at: 0)
        }
        if let cluster = store as? PostgresConfigStore {
            services.append(
                ClusterHeartbeat(
                    membership: cluster, node: node, revision: { cluster.appliedRevision },
                    interval: Self.heartbeatInterval, logger: logger))
        }
        services.append(ProxyListeners(listeners: proxies))
        // A listener that fails to start (port in use) shuts the others down gracefully rather
        // than cancelling them, which Hummingbird would report as an error of its own: the
        // problem is then the only line a failed start prints.
        // A hard bound behind the drain's deadline: what has not ended a few seconds after it
        // is cancelled.
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0, failureTerminationBehavior: .gracefullyShutdownGroup) },
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .milliseconds(config.drainTimeoutMs) + .seconds(5)
        let group = ServiceGroup(configuration: groupConfiguration)
        serviceGroup.withLock { $0 = group }
        // A signal (or `stop()`) that came before the group existed found nothing to shut down.
        if drain.isDraining { await group.triggerGracefulShutdown() }
        let result: Result<Void, any Error>
        do {
            try await group.run()
            result = .success(())
        } catch {
            result = .failure(error)
        }
        // Closing the store and the client must finish even when this task was cancelled.
        await Task { await self.shutdown() }.value
        try result.get()
    }

    /// Drains, as on SIGTERM: not ready any more, no new connections, running requests and
    /// streams go on until they end or `shutdown.drain_timeout_ms` passes; then streams still
    /// open end with an in-band `"code":"shutdown"` error (see ``ShutdownDrain``). The store is
    /// closed last.
    public func stop() async {
        guard drain.begin() else { return }
        let drain = self.drain
        let timeout = config.drainTimeoutMs
        Task {
            try? await Task.sleep(for: .milliseconds(timeout))
            drain.expire()
        }
        let group = serviceGroup.withLock { $0 }
        await group?.triggerGracefulShutdown()
    }

    private func shutdown() async {
        health.shutdown()
        await clients.shutdown()
        accessLogWriter?.close()
        try? await store.close()
    }
}

/// Runs one Hummingbird application and names the address when it cannot listen.
struct ListenerService: Service {
    let address: ListenAddress
    let app: any Service

    func run() async throws {
        do {
            try await app.run()
        } catch let error as IOError {
            throw Gateway.ListenError(description: "cannot listen on \(address): \(error.description)")
        }
    }
}

/// The proxy listeners as one service: on shutdown they all stop accepting at once (a service
/// group stops its services one after another).
struct ProxyListeners: Service {
    let listeners: [ListenerService]

    func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for listener in listeners {
                group.addTask { try await listener.run() }
            }
            try await group.waitForAll()
        }
    }
}

/// Applies configuration changed outside this process (edited standalone file).
struct StoreWatcher: Service {
    let store: any ConfigStore
    let manager: ConfigManager

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await store.watch(
                    { records in await manager.reload(records) },
                    onFailure: { error in await manager.reloadFailed(error) })
            }
        } catch is CancellationError {
            // Shutting down: the watch ends normally.
        }
    }
}

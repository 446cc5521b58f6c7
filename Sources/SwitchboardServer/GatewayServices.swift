import Logging
import SwitchboardCore

/// The shared runtime parts plugins and the compiler use: upstream clients, quota counters,
/// instance health, metrics and the logger. One value threaded through instead of five.
public struct GatewayServices: Sendable {
    public var clients: UpstreamClients
    public var quotas: any QuotaCounterStore
    public var health: HealthRegistry
    public var metrics: GatewayMetrics
    public var logger: Logger
    /// `policy: cluster` counters, on a node of a cluster (PostgreSQL store).
    var clusterQuotas: ClusterQuotas?
    /// The `semantic` balancer's example embeddings, kept across configuration changes.
    public var embeddings = EmbeddingCache()
    /// Google service accounts' access tokens (Vertex AI), fetched once and kept until expiry.
    public var gcpTokens = GCPAccessTokens()
    /// The quota counters in use, for the dashboard.
    public var quotaBoard = QuotaBoard()
    /// The shutdown's drain: streams and requests still running at its deadline are ended.
    public var drain = ShutdownDrain()

    public init(
        clients: UpstreamClients, quotas: any QuotaCounterStore = LocalQuotaCounters(), health: HealthRegistry,
        metrics: GatewayMetrics = GatewayMetrics(), logger: Logger
    ) {
        self.clients = clients
        self.quotas = quotas
        self.health = health
        self.metrics = metrics
        self.logger = logger
    }

    /// For `switchboard validate`: nothing runs (no checkers, no connections).
    public static func inert(logger: Logger) -> GatewayServices {
        let clients = UpstreamClients()
        return GatewayServices(
            clients: clients, health: HealthRegistry(clients: clients, logger: logger, runsCheckers: false),
            logger: logger)
    }
}

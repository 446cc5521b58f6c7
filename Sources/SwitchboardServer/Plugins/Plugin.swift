import Hummingbird
import Logging
import SwitchboardCore

/// The runtime half of a plugin: it compiles a validated config into a handler. One type per
/// plugin, registered in ``PluginRegistry``; its ``PluginSpec`` is the schema half.
public protocol Plugin: Sendable {
    var spec: PluginSpec { get }
    /// Builds the handler for one validated config (route, service or consumer scope).
    func makeHandler(config: JSONValue, scope: PluginSpec.Scope, context: PluginContext) throws -> any PluginHandler
}

/// What a plugin may use when it compiles: shared upstream clients, the logger, and the key of
/// the object the config belongs to (`/apisix/routes/1`, `/apisix/consumers/jack`), which
/// identifies runtime state such as balancer cursors and quota counters.
public struct PluginContext: Sendable {
    public var services: GatewayServices
    public var parentKey: String

    public init(services: GatewayServices, parentKey: String) {
        self.services = services
        self.parentKey = parentKey
    }

    public var clients: UpstreamClients { services.clients }
    public var quotas: any QuotaCounterStore { services.quotas }
    var clusterQuotas: ClusterQuotas? { services.clusterQuotas }
    public var health: HealthRegistry { services.health }
    public var metrics: GatewayMetrics { services.metrics }
    public var logger: Logger { services.logger }
}

/// A compiled plugin config with its phase hooks. A hook returning a response ends the request
/// with it (later phases are skipped; the log phase still runs).
///
/// Phases in order: `rewrite` (authentication: sets the consumer), `access` (checks such as
/// quotas), `proxy` (the first handler that answers produces the response; otherwise the route's
/// upstream does), `log` (after the response body has been sent).
public protocol PluginHandler: Sendable {
    var name: String { get }
    var priority: Int { get }
    func rewrite(_ exchange: Exchange) async throws -> Response?
    func access(_ exchange: Exchange) async throws -> Response?
    func proxy(_ exchange: Exchange) async throws -> Response?
    func log(_ exchange: Exchange)
}

extension PluginHandler {
    public func rewrite(_ exchange: Exchange) async throws -> Response? { nil }
    public func access(_ exchange: Exchange) async throws -> Response? { nil }
    public func proxy(_ exchange: Exchange) async throws -> Response? { nil }
    public func log(_ exchange: Exchange) {}
}

/// A handler plus the generic `_meta` behaviour (`filter`), as the pipeline runs it.
public struct PluginSlot: Sendable {
    public var handler: any PluginHandler
    public var filter: Expr?

    public init(handler: any PluginHandler, filter: Expr?) {
        self.handler = handler
        self.filter = filter
    }

    public var name: String { handler.name }
    public var priority: Int { handler.priority }
}

/// The kinds of configuration object the Admin API and the store hold, named as in APISIX's
/// Admin API paths (`/apisix/admin/<path>`) and etcd keys (`/apisix/<path>/<id>`).
public enum ResourceKind: String, Sendable, CaseIterable, Hashable, Codable {
    case routes
    case services
    case upstreams
    case consumers
    case credentials
    case pluginMetadata = "plugin_metadata"
    case consumerGroups = "consumer_groups"
    case pluginConfigs = "plugin_configs"
    case globalRules = "global_rules"
    case ssls
    /// Secret managers; ids are `<manager>/<id>`, e.g. `vault/1`.
    case secrets

    /// The key prefix APISIX uses in responses, e.g. `/apisix/routes`.
    public var keyPrefix: String { "/apisix/\(rawValue)" }

    /// The singular noun APISIX uses in messages such as `wrong route id`.
    public var singular: String {
        switch self {
        case .routes: return "route"
        case .services: return "service"
        case .upstreams: return "upstream"
        case .consumers: return "consumer"
        case .credentials: return "credential"
        case .pluginMetadata: return "plugin_metadata"
        case .consumerGroups: return "consumer group"
        case .pluginConfigs: return "plugin config"
        case .globalRules: return "global rule"
        case .ssls: return "ssl"
        case .secrets: return "secret"
        }
    }
}

/// One stored configuration object, as the Admin API returns it.
public struct StoredResource: Sendable, Equatable {
    public var kind: ResourceKind
    /// For credentials, `<username>/credentials/<id>` like APISIX's etcd key.
    public var id: String
    /// The validated value including `id`, `create_time` and `update_time`.
    public var value: JSONValue
    public var createdIndex: Int
    public var modifiedIndex: Int

    public init(kind: ResourceKind, id: String, value: JSONValue, createdIndex: Int, modifiedIndex: Int) {
        self.kind = kind
        self.id = id
        self.value = value
        self.createdIndex = createdIndex
        self.modifiedIndex = modifiedIndex
    }

    /// `/apisix/routes/1`, `/apisix/consumers/jack/credentials/a`.
    public var key: String {
        if kind == .credentials { return "/apisix/consumers/\(id)" }
        return "\(kind.keyPrefix)/\(id)"
    }
}

import Collections

/// Every stored configuration object, by kind and id, in creation order. The Admin API reads
/// it, the compiler turns it into a data-plane snapshot. A value type: each write produces a
/// new state, so a half-applied write can never be observed.
public struct ConfigState: Sendable, Equatable {
    public private(set) var resources: [ResourceKind: OrderedDictionary<String, StoredResource>] = [:]
    /// The highest `modifiedIndex` handed out so far.
    public private(set) var revision = 0

    public init(_ records: [StoredResource] = []) {
        for record in records.sorted(by: { $0.createdIndex < $1.createdIndex }) {
            resources[record.kind, default: [:]][record.id] = record
            revision = max(revision, record.modifiedIndex)
        }
    }

    public subscript(kind: ResourceKind, id: String) -> StoredResource? {
        resources[kind]?[id]
    }

    public func list(_ kind: ResourceKind) -> [StoredResource] {
        resources[kind].map { Array($0.values) } ?? []
    }

    public mutating func set(_ record: StoredResource) {
        resources[record.kind, default: [:]][record.id] = record
        revision = max(revision, record.modifiedIndex)
    }

    @discardableResult
    public mutating func remove(_ kind: ResourceKind, _ id: String) -> StoredResource? {
        resources[kind]?.removeValue(forKey: id)
    }

    /// Credentials of one consumer (their ids are `<username>/credentials/<id>`).
    public func credentials(of username: String) -> [StoredResource] {
        let prefix = "\(username)/credentials/"
        return list(.credentials).filter { $0.id.hasPrefix(prefix) }
    }

    /// A route's plugins as they run, in APISIX's order: its own over its plugin config's, both
    /// over its service's. (The snapshot compiler and the dashboard both read them so.)
    public func plugins(ofRoute route: JSONValue) -> JSONObject {
        let service = route["service_id"].flatMap { self[.services, ConfigValidator.idString($0)]?.value }
        let pluginConfig = route["plugin_config_id"].flatMap {
            self[.pluginConfigs, ConfigValidator.idString($0)]?.value
        }
        var plugins = service?["plugins"]?.objectValue ?? [:]
        for (name, config) in pluginConfig?["plugins"]?.objectValue ?? [:] { plugins[name] = config }
        for (name, config) in route["plugins"]?.objectValue ?? [:] { plugins[name] = config }
        return plugins
    }
}

import Logging
import SwitchboardCore

/// Turns the stored configuration into a ``Snapshot``: merges services into routes, resolves
/// upstream ids, compiles predicates and plugins, and indexes consumer keys. The state it gets
/// has been validated; an object that still fails to compile is logged and left out rather
/// than taking the whole configuration down.
public struct SnapshotCompiler: Sendable {
    public let registry: PluginRegistry
    public let services: GatewayServices
    let certificateContexts = CertificateContexts()
    var logger: Logger { services.logger }
    public var health: HealthRegistry { services.health }

    public init(registry: PluginRegistry, services: GatewayServices) {
        self.registry = registry
        self.services = services
    }

    private func context(_ key: String) -> PluginContext {
        PluginContext(services: services, parentKey: key)
    }

    /// - Parameter secrets: the values of the configuration's secret references; an object
    ///   whose reference has none is left out (and logged), never compiled with the reference
    ///   as a literal key.
    public func compile(_ state: ConfigState, secrets: SecretResolver.Values = .init()) -> Snapshot {
        var routes: [(RoutePredicate, CompiledRoute)] = []
        for record in state.list(.routes) {
            let route = record.value
            if route["status"]?.intValue == 0 { continue }
            do {
                let service = route["service_id"].flatMap { state[.services, ConfigValidator.idString($0)]?.value }
                let plugins = state.plugins(ofRoute: route)
                let upstreamValue =
                    route["upstream"]
                    ?? route["upstream_id"].flatMap { state[.upstreams, ConfigValidator.idString($0)]?.value }
                    ?? service?["upstream"]
                    ?? service?["upstream_id"].flatMap { state[.upstreams, ConfigValidator.idString($0)]?.value }
                let predicate = try RoutePredicate.compile(
                    route: route, serviceHosts: service?["hosts"]?.arrayValue?.compactMap(\.stringValue))
                let compiled = CompiledRoute(
                    id: record.id, name: route["name"]?.stringValue,
                    serviceID: route["service_id"].map(ConfigValidator.idString),
                    plugins: try registry.compile(
                        secrets.substitute(.object(plugins)), scope: .route, context: context(record.key)),
                    upstream: upstreamValue.map(CompiledUpstream.init),
                    uriPattern: Self.patterns(route["uri"], route["uris"]),
                    hostPattern: Self.patterns(route["host"], route["hosts"] ?? service?["hosts"]))
                routes.append((predicate, compiled))
            } catch {
                logger.error("route \(record.id) left out of the configuration: \(error)")
            }
        }

        var consumers: [String: CompiledConsumer] = [:]
        var authKeys: [String: [String: AuthIdentity]] = [:]
        let catalog = registry.catalog
        func index(_ plugins: JSONValue?, _ identity: AuthIdentity) {
            for (name, config) in plugins?.objectValue ?? [:] {
                guard let field = catalog[name]?.uniqueConsumerField, let key = config[field]?.stringValue else {
                    continue
                }
                // Keys are unique as written (the validator checks); two references may still
                // resolve to the same key. The first holder keeps it, and the clash is logged.
                if let holder = authKeys[name]?[key] {
                    logger.error(
                        "\(name): \(identity.consumer)'s key resolves to the same value as \(holder.consumer)'s; it stays \(holder.consumer)'s"
                    )
                    continue
                }
                authKeys[name, default: [:]][key] = identity
            }
        }
        // A group's plugins are compiled once, for the group: an `ai-rate-limiting` there is one
        // counter for all its members (its parent key is the group's).
        var groups: [String: [PluginSlot]] = [:]
        for record in state.list(.consumerGroups) {
            do {
                let nonAuth = (record.value["plugins"]?.objectValue ?? [:]).filter { catalog[$0.key]?.isAuth != true }
                groups[record.id] = try registry.compile(
                    secrets.substitute(.object(nonAuth)), scope: .consumer, context: context(record.key))
            } catch {
                logger.error("consumer group \(record.id) left out of the configuration: \(error)")
            }
        }
        for record in state.list(.consumers) {
            let value = record.value
            do {
                let plugins = try secrets.substitute(value["plugins"] ?? .object([:]))
                let nonAuth = (plugins.objectValue ?? [:]).filter { catalog[$0.key]?.isAuth != true }
                var slots = try registry.compile(.object(nonAuth), scope: .consumer, context: context(record.key))
                if let groupID = value["group_id"].map(ConfigValidator.idString) {
                    // A member of a group that could not be compiled is left out too: its
                    // team quota would otherwise not hold.
                    guard let groupSlots = groups[groupID] else {
                        throw SecretResolver.Failure(reference: groupID, reason: "its consumer group is not in force")
                    }
                    slots = PluginRegistry.merge(route: groupSlots, consumer: slots)
                }
                consumers[record.id] = CompiledConsumer(
                    username: record.id, customID: value["labels"]?["custom_id"]?.stringValue, plugins: slots,
                    groupID: value["group_id"].map(ConfigValidator.idString))
                index(plugins, AuthIdentity(consumer: record.id, credentialID: nil))
            } catch {
                logger.error("consumer \(record.id) left out of the configuration: \(error)")
            }
        }
        for record in state.list(.credentials) {
            let parts = record.id.components(separatedBy: "/credentials/")
            guard parts.count == 2, consumers[parts[0]] != nil else { continue }
            do {
                index(
                    try secrets.substitute(record.value["plugins"] ?? .null),
                    AuthIdentity(consumer: parts[0], credentialID: parts[1]))
            } catch {
                logger.error("credential \(record.id) left out of the configuration: \(error)")
            }
        }

        var global: [PluginSlot] = []
        for record in state.list(.globalRules) {
            do {
                global += try registry.compile(
                    secrets.substitute(record.value["plugins"] ?? .null), scope: .route, context: context(record.key))
            } catch {
                logger.error("global rule \(record.id) is not in force, every request is refused: \(error)")
                global.append(
                    PluginSlot(handler: OutOfForceHandler(globalRule: record.id), filter: nil))
            }
        }

        var metadata: [String: JSONValue] = [:]
        for record in state.list(.pluginMetadata) { metadata[record.id] = record.value }

        return Snapshot(
            revision: state.revision, router: RouteMatcher(routes), consumers: consumers, authKeys: authKeys,
            pluginMetadata: metadata, globalRules: PluginRegistry.sorted(global),
            certificates: CertificateTable(state, cache: certificateContexts, logger: logger))
    }

    /// One pattern, or a list joined with commas (bounded by the configuration).
    static func patterns(_ one: JSONValue?, _ many: JSONValue?) -> String {
        if let one = one?.stringValue { return one }
        return (many?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ",")
    }
}

import SwitchboardCore

/// All plugins of this build by name. Adding a plugin means adding its file and one line here.
public struct PluginRegistry: Sendable {
    public let plugins: [String: any Plugin]

    public init(_ plugins: [any Plugin]) {
        self.plugins = Dictionary(plugins.map { ($0.spec.name, $0) }, uniquingKeysWith: { _, last in last })
    }

    /// The plugins built into Switchboard.
    public static let builtIn = builtIn(store: .unknown)

    /// The built-in plugins for a gateway on `store` (`policy: cluster` needs a shared one).
    public static func builtIn(store: RateLimitSchemas.Store) -> PluginRegistry {
        PluginRegistry([
            KeyAuthPlugin(),
            MockingPlugin(),
            AIProxyMultiPlugin(),
            AIProxyPlugin(),
            AIRateLimitingPlugin(store: store),
        ])
    }

    public var catalog: PluginCatalog { PluginCatalog(plugins.values.map(\.spec)) }

    /// Compiles a validated `plugins` object into slots sorted by priority (highest first),
    /// leaving out plugins disabled with `_meta.disable`.
    public func compile(_ plugins: JSONValue?, scope: PluginSpec.Scope, context: PluginContext) throws -> [PluginSlot] {
        guard case .object(let object)? = plugins else { return [] }
        var slots: [PluginSlot] = []
        for (name, config) in object {
            guard let plugin = self.plugins[name] else { continue }
            if config["_meta"]?["disable"]?.boolValue == true { continue }
            let filter = try config["_meta"]?["filter"].map { try Expr.compile($0) }
            slots.append(
                PluginSlot(
                    handler: try plugin.makeHandler(config: config, scope: scope, context: context), filter: filter))
        }
        return Self.sorted(slots)
    }

    static func sorted(_ slots: [PluginSlot]) -> [PluginSlot] {
        slots.sorted { $0.priority != $1.priority ? $0.priority > $1.priority : $0.name < $1.name }
    }

    /// A consumer's plugins replace the route's plugins of the same name (APISIX's
    /// `merge_consumer_route`); the rest of both lists is kept.
    public static func merge(route: [PluginSlot], consumer: [PluginSlot]) -> [PluginSlot] {
        guard !consumer.isEmpty else { return route }
        let names = Set(consumer.map(\.name))
        return sorted(route.filter { !names.contains($0.name) } + consumer)
    }
}

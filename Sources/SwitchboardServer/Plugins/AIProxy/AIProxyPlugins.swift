import SwitchboardCore

/// `ai-proxy-multi`: one OpenAI-compatible endpoint in front of several provider instances, with
/// priorities, weighted or consistent-hash balancing, and fallback on failure.
public struct AIProxyMultiPlugin: Plugin {
    public static let name = "ai-proxy-multi"
    public static let priority = 1041

    public let spec = PluginSpec(
        name: AIProxyMultiPlugin.name, priority: AIProxyMultiPlugin.priority, schema: AIProxySchemas.multi,
        sensitivePaths: AIProxySchemas.multiSecrets,
        check: { (config) throws(SchemaError) in try AIProxySchemas.checkMulti(config) })

    public init() {}

    public func makeHandler(config: JSONValue, scope: PluginSpec.Scope, context: PluginContext) throws
        -> any PluginHandler
    {
        AIProxyHandler(
            name: Self.name, priority: Self.priority, settings: AIProxySettings(multi: config), context: context)
    }
}

/// `ai-proxy`: a single provider; behaves as a one-instance `ai-proxy-multi` whose instance is
/// named `ai-proxy-<provider>` and that never retries.
public struct AIProxyPlugin: Plugin {
    public static let name = "ai-proxy"
    public static let priority = 1040

    public let spec = PluginSpec(
        name: AIProxyPlugin.name, priority: AIProxyPlugin.priority, schema: AIProxySchemas.single,
        sensitivePaths: AIProxySchemas.singleSecrets,
        check: { (config) throws(SchemaError) in try AIProxySchemas.checkSingle(config) })

    public init() {}

    public func makeHandler(config: JSONValue, scope: PluginSpec.Scope, context: PluginContext) throws
        -> any PluginHandler
    {
        AIProxyHandler(
            name: Self.name, priority: Self.priority, settings: AIProxySettings(single: config), context: context)
    }
}

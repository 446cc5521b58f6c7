/// What the configuration layer knows about a plugin: its name, priority and schemas. The
/// runtime half (phase hooks) lives in the server module; keeping the schema here lets
/// `switchboard validate` and the Admin API check configuration without starting anything.
public struct PluginSpec: Sendable {
    public enum Scope: Sendable {
        /// On a route or service (`plugins` of the object).
        case route
        /// On a consumer (`plugins` of the consumer): auth plugins use ``PluginSpec/consumerSchema``.
        case consumer
        /// In a consumer credential: auth plugins only.
        case credential
    }

    public var name: String
    /// Higher runs first within a phase (APISIX's numbers, e.g. key-auth 2500, ai-proxy-multi 1041).
    public var priority: Int
    public var isAuth: Bool
    public var schema: Schema
    /// Schema of the plugin's config inside a consumer or credential (auth plugins: the key).
    public var consumerSchema: Schema?
    /// Schema of `/apisix/admin/plugin_metadata/<name>`; `nil` when the plugin has none.
    public var metadataSchema: Schema?
    /// Field of the consumer config that must be unique across consumers and credentials.
    public var uniqueConsumerField: String?
    /// Paths inside the plugin's config that hold secrets (`*` stands for every member or
    /// element): encrypted at rest and never shown by the Admin API.
    public var sensitivePaths: [[String]] = []
    /// Checks the schema cannot express (e.g. duplicate instance names), after the schema.
    public var check: (@Sendable (JSONValue) throws(SchemaError) -> JSONValue)?

    public init(
        name: String, priority: Int, isAuth: Bool = false, schema: Schema, consumerSchema: Schema? = nil,
        metadataSchema: Schema? = nil, uniqueConsumerField: String? = nil, sensitivePaths: [[String]] = [],
        check: (@Sendable (JSONValue) throws(SchemaError) -> JSONValue)? = nil
    ) {
        self.sensitivePaths = sensitivePaths
        self.name = name
        self.priority = priority
        self.isAuth = isAuth
        self.schema = schema
        self.consumerSchema = consumerSchema
        self.metadataSchema = metadataSchema
        self.uniqueConsumerField = uniqueConsumerField
        self.check = check
    }

    /// APISIX's `_meta` accepted by every plugin.
    public static let metaSchema = Schema(
        type: .object,
        properties: [
            "disable": Schema(type: .boolean),
            "filter": Schema(type: .array),
            "priority": Schema(type: .integer),
            "error_response": Schema(types: [.string, .object]),
        ])

    /// Validates one plugin config for `scope`, returning it with defaults injected.
    public func validate(_ config: JSONValue, scope: Scope) throws(SchemaError) -> JSONValue {
        var config = config
        var meta: JSONValue?
        if case .object(var object) = config, let m = object.removeValue(forKey: "_meta") {
            meta = try Self.metaSchema.validate(m)
            if let filter = meta?["filter"] {
                do { _ = try Expr.compile(filter) } catch {
                    throw SchemaError("invalid _meta.filter: \(error.message)")
                }
            }
            config = .object(object)
        }
        let schema = (scope == .route ? nil : consumerSchema) ?? self.schema
        var result = try schema.validate(config)
        if let check { result = try check(result) }
        if let meta { result["_meta"] = meta }
        return result
    }
}

/// The plugins this build knows, by name.
public struct PluginCatalog: Sendable {
    public private(set) var specs: [String: PluginSpec]

    public init(_ specs: [PluginSpec]) {
        self.specs = Dictionary(specs.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
    }

    public subscript(name: String) -> PluginSpec? { specs[name] }
}

import Foundation

/// Validates configuration objects the way APISIX's Admin API does, with its messages:
/// resource schema, then each plugin's schema (defaults injected), then references to other
/// objects and uniqueness of consumer keys.
public struct ConfigValidator: Sendable {
    public let catalog: PluginCatalog

    /// Checks an `ssls` object's certificate and key (PEM parses, key matches, and — when the
    /// second argument is true — not expired); supplied by the server, which links the TLS
    /// library. Throws the message to answer.
    public var certificateCheck: (@Sendable (JSONValue, Bool) throws -> Void)?

    public init(catalog: PluginCatalog, certificateCheck: (@Sendable (JSONValue, Bool) throws -> Void)? = nil) {
        self.catalog = catalog
        self.certificateCheck = certificateCheck
    }

    /// A rejected object; ``message`` is the Admin API's `error_msg`.
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    /// Validates `value` for `kind` (id and timestamps already set by the caller) against the
    /// rest of `state`, returning the value to store. `isWrite` marks an Admin API write: only
    /// then is a certificate refused for having expired (one that expires while stored must not
    /// keep the gateway from starting or reloading).
    public func validate(
        _ kind: ResourceKind, id: String, value: JSONValue, state: ConfigState, isWrite: Bool = false
    ) throws(Failure) -> JSONValue {
        switch kind {
        case .routes: return try validateRouteOrService(ResourceSchemas.route, value, state: state)
        case .services: return try validateRouteOrService(ResourceSchemas.service, value, state: state)
        case .upstreams: return try validateUpstream(value)
        case .consumers: return try validateConsumer(value, username: id, state: state)
        case .credentials: return try validateCredential(value, id: id, state: state)
        case .pluginMetadata: return try validateMetadata(value, name: id)
        case .consumerGroups: return try validatePluginSet(ResourceSchemas.consumerGroup, value, scope: .consumer)
        case .pluginConfigs: return try validatePluginSet(ResourceSchemas.pluginConfig, value, scope: .route)
        case .globalRules: return try validateGlobalRule(value, id: id, state: state)
        case .ssls: return try validateSSL(value, checkExpiry: isWrite)
        case .secrets: return try validateSecret(value, id: id)
        }
    }

    private func validatePluginSet(_ schema: Schema, _ input: JSONValue, scope: PluginSpec.Scope) throws(Failure)
        -> JSONValue
    {
        var value = try schemaCheck(schema, input)
        if let plugins = try validatePlugins(value["plugins"], scope: scope) { value["plugins"] = plugins }
        return value
    }

    /// Two global rules configuring the same plugin would run it twice per request; APISIX
    /// refuses the second, with this message.
    private func validateGlobalRule(_ input: JSONValue, id: String, state: ConfigState) throws(Failure) -> JSONValue {
        let value = try validatePluginSet(ResourceSchemas.globalRule, input, scope: .route)
        for name in value["plugins"]?.objectValue?.keys ?? [] {
            for other in state.list(.globalRules) where other.id != id && other.value["plugins"]?[name] != nil {
                throw Failure("plugin '\(name)' already exists in global rule with id '\(other.id)'")
            }
        }
        return value
    }

    private func validateSSL(_ input: JSONValue, checkExpiry: Bool) throws(Failure) -> JSONValue {
        let value = try schemaCheck(ResourceSchemas.ssl, input)
        if value["type"]?.stringValue == "server" {
            if value["sni"] == nil && value["snis"] == nil {
                throw Failure("invalid configuration: a server certificate needs \"sni\" or \"snis\"")
            }
            if value["sni"] != nil && value["snis"] != nil {
                throw Failure("invalid configuration: give either \"sni\" or \"snis\", not both")
            }
        }
        if let certificateCheck {
            do { try certificateCheck(value, checkExpiry) } catch { throw Failure("invalid configuration: \(error)") }
        }
        return value
    }

    private func validateSecret(_ input: JSONValue, id: String) throws(Failure) -> JSONValue {
        let parts = id.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[1].isEmpty else { throw Failure("no secret id") }
        guard parts[0] == "vault" else { throw Failure("secret manager not exits, manager: \(parts[0])") }
        do { _ = try ResourceSchemas.idSchema.validate(.string(String(parts[1]))) } catch {
            throw Failure("invalid configuration: property \"id\" validation failed: \(error.message)")
        }
        return try schemaCheck(ResourceSchemas.vaultSecret, input)
    }

    private func schemaCheck(_ schema: Schema, _ value: JSONValue) throws(Failure) -> JSONValue {
        do { return try schema.validate(value) } catch { throw Failure("invalid configuration: \(error.message)") }
    }

    private func validatePlugins(_ plugins: JSONValue?, scope: PluginSpec.Scope, prefix: String = "") throws(Failure)
        -> JSONValue?
    {
        guard case .object(let object)? = plugins else { return plugins }
        var result = JSONObject()
        for (name, config) in object {
            guard let spec = catalog[name] else { throw Failure("\(prefix)unknown plugin [\(name)]") }
            do {
                result[name] = try spec.validate(config, scope: scope)
            } catch {
                throw Failure("\(prefix)failed to check the configuration of plugin \(name) err: \(error.message)")
            }
        }
        return .object(result)
    }

    private func validateRouteOrService(_ schema: Schema, _ input: JSONValue, state: ConfigState) throws(Failure)
        -> JSONValue
    {
        // A route whose plugins all come from its plugin config needs nothing else (APISIX also
        // wants `plugins` or an upstream): checked as if it had an empty `plugins`.
        let pluginsFromConfig =
            input["plugin_config_id"] != nil
            && ["plugins", "upstream", "upstream_id", "service_id", "script"].allSatisfy { input[$0] == nil }
        var checked = input
        if pluginsFromConfig { checked["plugins"] = .object([:]) }
        var value = try schemaCheck(schema, checked)
        if pluginsFromConfig { value["plugins"] = nil }
        if let plugins = try validatePlugins(value["plugins"], scope: .route) { value["plugins"] = plugins }
        if let upstream = value["upstream"] { try checkNodes(upstream) }
        if let vars = value["vars"] {
            do { _ = try Expr.compile(vars) } catch {
                throw Failure("invalid configuration: failed to validate the 'vars' expression: \(error.message)")
            }
        }
        for addr in (value["remote_addrs"]?.arrayValue ?? []) + [value["remote_addr"]].compactMap({ $0 }) {
            if let s = addr.stringValue, CIDR(s) == nil {
                throw Failure("invalid configuration: invalid ip address: \(s)")
            }
        }
        if let upstreamID = value["upstream_id"].map(Self.idString), state[.upstreams, upstreamID] == nil {
            throw Failure("failed to fetch upstream info by upstream id [\(upstreamID)], response code: 404")
        }
        if let serviceID = value["service_id"].map(Self.idString), state[.services, serviceID] == nil {
            throw Failure("failed to fetch service info by service id [\(serviceID)], response code: 404")
        }
        if let configID = value["plugin_config_id"].map(Self.idString), state[.pluginConfigs, configID] == nil {
            throw Failure("failed to fetch plugin config info by plugin config id [\(configID)], response code: 404")
        }
        return value
    }

    private func checkNodes(_ upstream: JSONValue) throws(Failure) {
        if case .object(let nodes)? = upstream["nodes"] {
            for key in nodes.keys where Self.splitHostPort(key) == nil {
                throw Failure("invalid configuration: invalid upstream node \(key)")
            }
        }
    }

    private func validateUpstream(_ input: JSONValue) throws(Failure) -> JSONValue {
        let value = try schemaCheck(ResourceSchemas.upstream, input)
        try checkNodes(value)
        return value
    }

    private func validateConsumer(_ input: JSONValue, username: String, state: ConfigState) throws(Failure)
        -> JSONValue
    {
        var value = try schemaCheck(ResourceSchemas.consumer, input)
        if let plugins = try validatePlugins(
            value["plugins"], scope: .consumer, prefix: "invalid plugins configuration: ")
        {
            value["plugins"] = plugins
        }
        try checkUniqueKeys(value["plugins"], owner: .consumers, id: username, state: state)
        if let groupID = value["group_id"].map(Self.idString), state[.consumerGroups, groupID] == nil {
            throw Failure(
                "failed to fetch consumer group info by consumer group id [\(groupID)], response code: 404")
        }
        return value
    }

    private func validateCredential(_ input: JSONValue, id: String, state: ConfigState) throws(Failure) -> JSONValue {
        var value = try schemaCheck(ResourceSchemas.credential, input)
        if case .object(let plugins)? = value["plugins"] {
            for name in plugins.keys where catalog[name]?.isAuth != true {
                if catalog[name] == nil { throw Failure("invalid plugins configuration: unknown plugin [\(name)]") }
                throw Failure("only supports auth type plugins in consumer credential")
            }
        }
        if let plugins = try validatePlugins(
            value["plugins"], scope: .credential, prefix: "invalid plugins configuration: ")
        {
            value["plugins"] = plugins
        }
        try checkUniqueKeys(value["plugins"], owner: .credentials, id: id, state: state)
        return value
    }

    private func validateMetadata(_ input: JSONValue, name: String) throws(Failure) -> JSONValue {
        guard let spec = catalog[name] else { throw Failure("invalid plugin name: \(name)") }
        guard let schema = spec.metadataSchema else {
            throw Failure("invalid configuration: plugin \(name) has no plugin metadata")
        }
        do { return try schema.validate(input) } catch { throw Failure("invalid configuration: \(error.message)") }
    }

    /// APISIX rejects a consumer key (e.g. key-auth `key`) already used by another consumer or
    /// credential, since a key must identify exactly one consumer.
    private func checkUniqueKeys(_ plugins: JSONValue?, owner: ResourceKind, id: String, state: ConfigState)
        throws(Failure)
    {
        guard case .object(let object)? = plugins else { return }
        for (name, config) in object {
            guard let field = catalog[name]?.uniqueConsumerField, let key = config[field], !key.isNull else { continue }
            for consumer in state.list(.consumers) where !(owner == .consumers && consumer.id == id) {
                if consumer.value["plugins"]?[name]?[field] == key {
                    throw Failure("duplicate key of plugin \(name) found with consumer: \(consumer.id)")
                }
            }
            for credential in state.list(.credentials) where !(owner == .credentials && credential.id == id) {
                if credential.value["plugins"]?[name]?[field] == key {
                    let parts = credential.id.components(separatedBy: "/credentials/")
                    throw Failure(
                        "duplicate key of plugin \(name) found with credential: \(parts.last ?? credential.id) of consumer: \(parts.first ?? "")"
                    )
                }
            }
        }
    }

    /// Ids may be written as strings or integers; both name the same object.
    public static func idString(_ value: JSONValue) -> String {
        if case .string(let s) = value { return s }
        return value.serialized()
    }

    /// Splits `host:port` (or `[v6]:port`); `nil` when malformed. A missing port is `nil` port.
    public static func splitHostPort(_ text: String) -> (host: String, port: Int?)? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            if rest.isEmpty { return (host, nil) }
            guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()), (1...65535).contains(port) else { return nil }
            return (host, port)
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        if parts.count == 1 { return parts[0].isEmpty ? nil : (String(parts[0]), nil) }
        guard parts.count == 2, !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else {
            return nil
        }
        return (String(parts[0]), port)
    }
}

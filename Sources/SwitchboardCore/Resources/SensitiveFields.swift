/// The fields of stored configuration that hold secrets — provider keys (`auth.header`,
/// `auth.query`), AWS and GCP credentials, consumer keys (`key-auth.key`), TLS private keys and
/// Vault tokens. They are encrypted at rest when a keyring is set, and the Admin API never shows
/// them: it answers ``mask`` instead, and a write that sends the mask back keeps the stored
/// value, so GET → edit → PUT round-trips. A `$env://` or `$secret://` reference is not a secret
/// and is shown as written.
public struct SensitiveFields: Sendable {
    /// What the Admin API shows in place of a secret.
    public static let mask = "******"

    /// Per plugin name, the paths inside its config.
    private let byPlugin: [String: [[String]]]

    public init(catalog: PluginCatalog) {
        var byPlugin: [String: [[String]]] = [:]
        for (name, spec) in catalog.specs {
            let paths = spec.sensitivePaths + (spec.uniqueConsumerField.map { [[$0]] } ?? [])
            if !paths.isEmpty { byPlugin[name] = paths }
        }
        self.byPlugin = byPlugin
    }

    /// A reference resolved when the configuration is compiled (APISIX's syntax).
    public static func isReference(_ text: String) -> Bool {
        text.hasPrefix("$env://") || text.hasPrefix("$ENV://") || text.hasPrefix("$secret://")
    }

    /// The secret paths of one object of `kind`.
    public func paths(_ kind: ResourceKind, _ value: JSONValue) -> [[String]] {
        switch kind {
        case .ssls: return [["key"]]
        case .secrets: return [["token"]]
        case .upstreams, .pluginMetadata: return []
        case .routes, .services, .consumers, .credentials, .consumerGroups, .pluginConfigs, .globalRules:
            var paths: [[String]] = []
            for name in value["plugins"]?.objectValue?.keys ?? [] {
                for path in byPlugin[name] ?? [] { paths.append(["plugins", name] + path) }
            }
            return paths
        }
    }

    /// `value` with every secret string passed through `transform` (references included;
    /// the transform decides).
    public func mapSecrets<E: Error>(
        _ kind: ResourceKind, _ value: JSONValue, _ transform: (String) throws(E) -> String
    ) throws(E) -> JSONValue {
        var result = value
        for path in paths(kind, value) {
            result = try result.mappingStrings(at: path[...], transform)
        }
        return result
    }

    /// What the Admin API shows: secrets replaced by the mask, references as written.
    public func masked(_ kind: ResourceKind, _ value: JSONValue) -> JSONValue {
        mapSecrets(kind, value) { (text) throws(Never) -> String in Self.isReference(text) ? text : Self.mask }
    }

    /// A write whose secret fields hold the mask keeps the values stored in `old` there. An
    /// element of an array (an `ai-proxy-multi` instance) is matched by its `name` when it has
    /// one, so reordering instances keeps each one's key.
    public func restoringMasks(_ kind: ResourceKind, new: JSONValue, old: JSONValue?) throws(SchemaError) -> JSONValue {
        var result = new
        for path in paths(kind, new) {
            result = try Self.restore(result, old, path[...], shown: [])
        }
        return result
    }

    private static func restore(_ new: JSONValue, _ old: JSONValue?, _ path: ArraySlice<String>, shown: [String])
        throws(SchemaError) -> JSONValue
    {
        guard let head = path.first else {
            guard new == .string(mask) else { return new }
            guard case .string? = old else {
                throw SchemaError(
                    "\(shown.joined(separator: ".")) is the mask \(mask) but no value is stored there to keep")
            }
            return old ?? new
        }
        let rest = path.dropFirst()
        switch new {
        case .object(var object):
            let keys = head == "*" ? Array(object.keys) : [head]
            for key in keys {
                guard let child = object[key] else { continue }
                object[key] = try restore(child, old?[key], rest, shown: shown + [key])
            }
            return .object(object)
        case .array(var items) where head == "*":
            let oldItems = old?.arrayValue ?? []
            for (i, item) in items.enumerated() {
                var counterpart: JSONValue? = i < oldItems.count ? oldItems[i] : nil
                if let name = item["name"]?.stringValue {
                    counterpart = oldItems.first { $0["name"]?.stringValue == name }
                }
                items[i] = try restore(item, counterpart, rest, shown: shown + [String(i)])
            }
            return .array(items)
        default:
            return new
        }
    }
}

extension JSONValue {
    /// This value with the strings at `path` (`*` is every member or element) transformed.
    public func mappingStrings<E: Error>(at path: ArraySlice<String>, _ transform: (String) throws(E) -> String)
        throws(E) -> JSONValue
    {
        guard let head = path.first else {
            if case .string(let text) = self { return .string(try transform(text)) }
            return self
        }
        let rest = path.dropFirst()
        switch self {
        case .object(var object):
            if head == "*" {
                for (key, child) in object { object[key] = try child.mappingStrings(at: rest, transform) }
            } else if let child = object[head] {
                object[head] = try child.mappingStrings(at: rest, transform)
            }
            return .object(object)
        case .array(var items) where head == "*":
            for i in items.indices { items[i] = try items[i].mappingStrings(at: rest, transform) }
            return .array(items)
        default:
            return self
        }
    }
}

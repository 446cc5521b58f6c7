import Foundation
import SwitchboardCore

/// `ai-rate-limiting`: token quotas per provider instance (or per rule key) for the route or
/// consumer it is configured on. Works with `ai-proxy-multi`/`ai-proxy`, which pick the
/// instance it limits.
public struct AIRateLimitingPlugin: Plugin {
    public static let name = "ai-rate-limiting"
    public static let priority = 1030

    public let spec: PluginSpec

    /// - Parameter store: the gateway's store; `policy: cluster` is refused unless it shares
    ///   counters.
    public init(store: RateLimitSchemas.Store = .unknown) {
        spec = PluginSpec(
            name: AIRateLimitingPlugin.name, priority: AIRateLimitingPlugin.priority, schema: RateLimitSchemas.plugin,
            check: { (config) throws(SchemaError) in try RateLimitSchemas.check(config, store: store) })
    }

    public func makeHandler(config: JSONValue, scope: PluginSpec.Scope, context: PluginContext) throws
        -> any PluginHandler
    {
        AIRateLimitingHandler(config: config, context: context)
    }
}

extension QuotaAmount {
    /// The amount configured by `value` (`nil` when absent). An amount the schema check would
    /// refuse (a record stored before that check existed) is kept as one that never resolves,
    /// so the request fails closed instead of passing unlimited.
    static func configured(_ value: JSONValue?) -> QuotaAmount? {
        guard let value else { return nil }
        return (try? QuotaAmount.parse(value).get()) ?? .fixed(0)
    }

    /// A positive integer, or `nil` (the request then fails with 500, as in APISIX).
    func resolve(_ exchange: Exchange) -> Int? {
        switch self {
        case .fixed(let n): return n > 0 ? n : nil
        case .variable(let variable, _, let fallback):
            guard let value = exchange.value(of: variable)?.stringValue, !value.isEmpty else { return fallback }
            return QuotaAmount.positiveInteger(value.trimmed)
        }
    }

    /// Why ``resolve(_:)`` gave nothing, for the error answer and the log.
    func failure(_ exchange: Exchange, field: String) -> String {
        switch self {
        case .fixed(let n): return "\(field) \(n) is not a positive integer"
        case .variable(let variable, let name, _):
            guard let value = exchange.value(of: variable)?.stringValue, !value.isEmpty else {
                return "\(field) ${\(name)} is not set and has no default"
            }
            let shown = value.count > 64 ? String(value.prefix(64)) + "..." : value
            return "\(field) ${\(name)} resolved to \"\(shown)\", not a positive integer"
        }
    }
}

/// A rule `key` such as `${consumer_name}` or `${http_x_team}-${arg_app}`; `nil` when none of
/// its variables resolves (the rule is then skipped).
struct RuleKey: Sendable {
    let parts: [LogFormat.Part]

    init(_ text: String) {
        var parts: [LogFormat.Part] = []
        var rest = Substring(text)
        while let start = rest.range(of: "${"), let end = rest[start.upperBound...].firstIndex(of: "}") {
            if start.lowerBound > rest.startIndex { parts.append(.literal(String(rest[..<start.lowerBound]))) }
            parts.append(.variable(String(rest[start.upperBound..<end]).trimmingCharacters(in: .whitespaces)))
            rest = rest[rest.index(after: end)...]
        }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
        self.parts = parts
    }

    func resolve(_ exchange: Exchange) -> String? {
        var out = ""
        var resolved = false
        for part in parts {
            switch part {
            case .literal(let text): out += text
            case .variable(let name):
                if let value = exchange.value(of: RequestVariable(name: name))?.stringValue, !value.isEmpty {
                    out += value
                    resolved = true
                }
            }
        }
        return resolved || parts.allSatisfy({ if case .literal = $0 { return true } else { return false } })
            ? out : nil
    }
}

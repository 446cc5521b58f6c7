import Foundation
import SwitchboardCore

/// `ai-rate-limiting`: token quotas per provider instance (or per rule key) for the route or
/// consumer it is configured on. Works with `ai-proxy-multi`/`ai-proxy`, which pick the
/// instance it limits.
public struct AIRateLimitingPlugin: Plugin {
    public static let name = "ai-rate-limiting"
    public static let priority = 1030

    public let spec = PluginSpec(
        name: AIRateLimitingPlugin.name, priority: AIRateLimitingPlugin.priority, schema: RateLimitSchemas.plugin,
        check: { (config) throws(SchemaError) in try RateLimitSchemas.check(config) })

    public init() {}

    public func makeHandler(config: JSONValue, scope: PluginSpec.Scope, context: PluginContext) throws
        -> any PluginHandler
    {
        AIRateLimitingHandler(config: config, context: context)
    }
}

/// A `limit`, `count` or `time_window`: a number, or `${variable ?? default}` resolved per request.
enum QuotaAmount: Sendable {
    case fixed(Int)
    case variable(RequestVariable, fallback: Int?)

    init?(_ value: JSONValue?) {
        switch value {
        case .int(let n)?: self = .fixed(n)
        case .double(let d)?: self = .fixed(Int(d))
        case .string(let text)?:
            if let n = Int(text) {
                self = .fixed(n)
                return
            }
            var inner = text.trimmingCharacters(in: .whitespaces)
            guard inner.hasPrefix("${"), inner.hasSuffix("}") else { return nil }
            inner = String(inner.dropFirst(2).dropLast()).trimmingCharacters(in: .whitespaces)
            let parts = inner.components(separatedBy: "??")
            let name = parts[0].trimmingCharacters(in: .whitespaces)
            let fallback = parts.count > 1 ? Int(parts[1].trimmingCharacters(in: .whitespaces)) : nil
            self = .variable(RequestVariable(name: name), fallback: fallback)
        default: return nil
        }
    }

    /// A positive integer, or `nil` (the request then fails with 500, as in APISIX).
    func resolve(_ exchange: Exchange) -> Int? {
        switch self {
        case .fixed(let n): return n > 0 ? n : nil
        case .variable(let variable, let fallback):
            if let text = exchange.value(of: variable)?.stringValue, let n = Int(text) { return n > 0 ? n : nil }
            return fallback.flatMap { $0 > 0 ? $0 : nil }
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

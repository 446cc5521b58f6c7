import Foundation
import Yams

/// Turns YAML text into a ``JSONValue``, expanding `${VAR}` and `${VAR:-default}` in scalar
/// values from the environment (after parsing, so a value can never break the YAML structure).
public enum YAMLDocument {
    /// Values a document may hold beyond one per byte of its text. Without aliases a document
    /// holds fewer values than bytes; aliases repeat their anchor's values, and aliases of
    /// aliases multiply them ("billion laughs": 430 bytes, 10^9 values), so that is where the
    /// bound bites.
    public static let maximumAliasedValues = 100_000

    public static func parse(_ text: String, environment: [String: String]) throws -> JSONValue? {
        guard let node = try Yams.compose(yaml: text) else { return nil }
        var budget = text.utf8.count + maximumAliasedValues
        return try convert(node, environment: environment, budget: &budget)
    }

    static func convert(_ node: Node, environment: [String: String], budget: inout Int) throws -> JSONValue {
        budget -= 1
        guard budget >= 0 else {
            throw GatewayConfig.Error("the YAML document expands to too many values (aliases of aliases?)")
        }
        switch node {
        case .scalar(let scalar):
            let expanded = try expand(scalar.string, environment: environment)
            guard scalar.style == .plain else { return .string(expanded) }
            switch expanded {
            case "", "~", "null", "Null", "NULL": return scalar.string.isEmpty ? .null : .string(expanded)
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            default: break
            }
            if let int = Int(expanded) { return .int(int) }
            if expanded.first.map({ $0.isNumber || $0 == "-" || $0 == "." }) == true, let double = Double(expanded),
                double.isFinite
            {
                return .double(double)
            }
            return .string(expanded)
        case .mapping(let mapping):
            var object = JSONObject()
            for (key, value) in mapping {
                object[try expand(key.string ?? "", environment: environment)] = try convert(
                    value, environment: environment, budget: &budget)
            }
            return .object(object)
        case .sequence(let sequence):
            return .array(try sequence.map { try convert($0, environment: environment, budget: &budget) })
        case .alias:
            return .null
        }
    }

    /// Expands `${VAR}` and `${VAR:-default}`; `$$` stays a literal `$`.
    public static func expand(_ text: String, environment: [String: String]) throws -> String {
        guard text.contains("${") else { return text }
        var out = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw GatewayConfig.Error("unterminated ${ in \"\(text)\"")
            }
            let body = rest[start.upperBound..<end]
            if let sep = body.range(of: ":-") {
                let name = String(body[..<sep.lowerBound])
                let value = environment[name] ?? ""
                out += value.isEmpty ? String(body[sep.upperBound...]) : value
            } else {
                out += environment[String(body)] ?? ""
            }
            rest = rest[rest.index(after: end)...]
        }
        out += rest
        return out
    }
}

import Foundation
import Yams

/// Turns YAML text into a ``JSONValue``, expanding `${VAR}` and `${VAR:-default}` in scalar
/// values from the environment (after parsing, so a value can never break the YAML structure).
public enum YAMLDocument {
    public static func parse(_ text: String, environment: [String: String]) throws -> JSONValue? {
        guard let node = try Yams.compose(yaml: text) else { return nil }
        return try convert(node, environment: environment)
    }

    static func convert(_ node: Node, environment: [String: String]) throws -> JSONValue {
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
                    value, environment: environment)
            }
            return .object(object)
        case .sequence(let sequence):
            return .array(try sequence.map { try convert($0, environment: environment) })
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

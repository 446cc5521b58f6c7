import Foundation

/// A compiled lua-resty-expr expression, the language of APISIX route `vars` and plugin
/// `_meta.filter`: `[["arg_x","==","1"], ["http_h","~~","re"]]` (all must hold),
/// `["OR", [...], [...]]`, `["!AND", ...]`, and per condition a leading `"!"` to negate.
public indirect enum Expr: Sendable {
    case all([Expr])
    case any([Expr])
    case not(Expr)
    case condition(RequestVariable, Operator, JSONValue)

    public enum Operator: Sendable {
        case equal, notEqual, greater, less, greaterOrEqual, lessOrEqual
        case regex(ExprRegex), regexCaseless(ExprRegex)
        case isIn, has, ipMatch([CIDR])
    }

    public struct CompileError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Compiles a `vars`-style rule list.
    public static func compile(_ value: JSONValue) throws(CompileError) -> Expr {
        guard case .array(let items) = value else { throw CompileError(message: "rule should be an array") }
        if let first = items.first, case .string(let op) = first {
            switch op.uppercased() {
            case "AND": return .all(try items.dropFirst().map { (v) throws(CompileError) in try compile(v) })
            case "OR": return .any(try items.dropFirst().map { (v) throws(CompileError) in try compile(v) })
            case "!AND": return .not(.all(try items.dropFirst().map { (v) throws(CompileError) in try compile(v) }))
            case "!OR": return .not(.any(try items.dropFirst().map { (v) throws(CompileError) in try compile(v) }))
            default: return try compileCondition(items)
            }
        }
        return .all(try items.map { (v) throws(CompileError) in try compile(v) })
    }

    private static func compileCondition(_ items: [JSONValue]) throws(CompileError) -> Expr {
        guard items.count >= 2, case .string(let name) = items[0] else {
            throw CompileError(message: "invalid expression: \(JSONValue.array(items).serialized())")
        }
        var rest = Array(items.dropFirst())
        var negate = false
        if case .string("!") = rest.first, rest.count >= 2 {
            negate = true
            rest.removeFirst()
        }
        guard case .string(let opName) = rest.first else {
            throw CompileError(message: "invalid operator in expression for \(name)")
        }
        let operand = rest.count >= 2 ? rest[1] : .null
        let op: Operator
        switch opName {
        case "==": op = .equal
        case "~=": op = .notEqual
        case ">": op = .greater
        case "<": op = .less
        case ">=": op = .greaterOrEqual
        case "<=": op = .lessOrEqual
        case "~~", "~*":
            guard case .string(let pattern) = operand else {
                throw CompileError(message: "regex operand for \(name) must be a string")
            }
            guard let regex = ExprRegex(pattern, caseInsensitive: opName == "~*") else {
                throw CompileError(message: "invalid regex \"\(pattern)\" for \(name)")
            }
            op = opName == "~~" ? .regex(regex) : .regexCaseless(regex)
        case "in":
            guard case .array = operand else { throw CompileError(message: "operand of 'in' must be an array") }
            op = .isIn
        case "has": op = .has
        case "ipmatch":
            let list: [JSONValue] = operand.arrayValue ?? [operand]
            var cidrs: [CIDR] = []
            for item in list {
                guard let s = item.stringValue, let cidr = CIDR(s) else {
                    throw CompileError(message: "invalid ip address in ipmatch: \(item.serialized())")
                }
                cidrs.append(cidr)
            }
            op = .ipMatch(cidrs)
        default:
            throw CompileError(message: "invalid operator '\(opName)'")
        }
        let condition = Expr.condition(RequestVariable(name: name), op, operand)
        return negate ? .not(condition) : condition
    }

    /// Whether evaluating the expression reads the request body (`post_arg.*`).
    public var needsBody: Bool {
        switch self {
        case .all(let list), .any(let list): return list.contains { $0.needsBody }
        case .not(let inner): return inner.needsBody
        case .condition(let variable, _, _): return variable.needsBody
        }
    }

    public func evaluate(_ source: some RequestVariableSource) -> Bool {
        switch self {
        case .all(let list): return list.allSatisfy { $0.evaluate(source) }
        case .any(let list): return list.contains { $0.evaluate(source) }
        case .not(let inner): return !inner.evaluate(source)
        case .condition(let variable, let op, let operand):
            return Self.test(source.value(of: variable), op, operand)
        }
    }

    private static func test(_ value: JSONValue?, _ op: Operator, _ operand: JSONValue) -> Bool {
        switch op {
        case .equal: return equal(value, operand)
        case .notEqual: return !equal(value, operand)
        case .greater, .less, .greaterOrEqual, .lessOrEqual:
            guard let left = number(value), let right = number(operand) else { return false }
            switch op {
            case .greater: return left > right
            case .less: return left < right
            case .greaterOrEqual: return left >= right
            default: return left <= right
            }
        case .regex(let regex), .regexCaseless(let regex):
            guard let text = string(value) else { return false }
            return regex.matches(text)
        case .isIn:
            guard let list = operand.arrayValue else { return false }
            return list.contains { equal(value, $0) }
        case .has:
            guard case .array(let list)? = value else { return false }
            return list.contains { equal($0, operand) }
        case .ipMatch(let cidrs):
            guard let text = string(value), let address = IPAddress(text) else { return false }
            return cidrs.contains { $0.contains(address) }
        }
    }

    /// Lua semantics: a number operand compares numerically, anything else as strings.
    private static func equal(_ value: JSONValue?, _ operand: JSONValue) -> Bool {
        guard let value else { return operand.isNull }
        switch operand {
        case .int, .double:
            guard let l = number(value), let r = operand.doubleValue else { return false }
            return l == r
        case .bool(let b):
            if case .bool(let v) = value { return v == b }
            return string(value) == (b ? "true" : "false")
        case .string(let s): return string(value) == s
        case .null: return value.isNull
        default: return value == operand
        }
    }

    private static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .int(let i)?: return Double(i)
        case .double(let d)?: return d
        case .string(let s)?: return Double(s.trimmingCharacters(in: .whitespaces))
        default: return nil
        }
    }

    private static func string(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let s)?: return s
        case .int(let i)?: return String(i)
        case .double?: return value?.serialized()
        case .bool(let b)?: return b ? "true" : "false"
        default: return nil
        }
    }
}

/// A regular expression compiled once for `~~` / `~*` (PCRE-like syntax, unanchored search).
public final class ExprRegex: @unchecked Sendable {
    // NSRegularExpression is immutable after creation and safe to share between threads.
    private let regex: NSRegularExpression

    public init?(_ pattern: String, caseInsensitive: Bool) {
        guard let regex = try? NSRegularExpression(pattern: pattern, options: caseInsensitive ? [.caseInsensitive] : [])
        else { return nil }
        self.regex = regex
    }

    public func matches(_ text: String) -> Bool {
        regex.firstMatch(in: text, options: [], range: NSRange(text.startIndex..<text.endIndex, in: text)) != nil
    }
}

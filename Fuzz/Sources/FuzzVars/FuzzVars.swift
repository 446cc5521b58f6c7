import FuzzSupport
import SwitchboardCore

/// Route `vars` (and plugin `_meta.filter`) expressions: JSON text compiled by ``Expr/compile(_:)``
/// and evaluated against one fixed request.
///
/// Input: the expression as JSON, e.g. `[["arg_x","==","1"],["http_h","~~","re"]]`. Checks that
/// compiling and evaluating never trap; that evaluation is deterministic; that the combinators
/// mean what they say: `["!AND", e]` is the negation of `e`, `["OR", e]` and `["AND", e]` are `e`;
/// and that ``Expr/needsBody`` is true only when the text names a `post_arg` variable.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVars(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let input = inputBytes(start, count)
    guard let json = try? JSONParser.parse(input), let expr = try? Expr.compile(json) else { return 0 }
    let request = FixedRequest()
    let result = expr.evaluate(request)
    check(expr.evaluate(request) == result, "evaluation is not deterministic: \(show(input))")
    // A list whose first item is an operator string is that combinator; otherwise wrapping the
    // rule in a one-element combinator must not change its meaning.
    for (wrapper, negated) in [("AND", false), ("OR", false), ("!AND", true), ("!OR", true)] {
        guard let wrapped = try? Expr.compile(.array([.string(wrapper), json])) else {
            fatalError("\(wrapper) of a valid rule does not compile: \(show(input))")
        }
        check(
            wrapped.evaluate(request) == (negated ? !result : result),
            "\(wrapper) changes the meaning of \(show(input))")
    }
    if expr.needsBody { check(input.containsPostArg, "needsBody without post_arg: \(show(input))") }
    return 0
}

/// One request: a chat completion from 10.0.0.5 with a small JSON body.
struct FixedRequest: RequestVariableSource {
    static let body: JSONValue = [
        "model": "gpt-4o", "stream": true, "max_tokens": 128, "temperature": 0.5, "user": nil,
        "tags": ["a", "b", 3], "metadata": ["team": "ml", "tier": 2],
        "messages": [["role": "user", "content": "hi"]],
    ]

    func value(of variable: RequestVariable) -> JSONValue? {
        switch variable {
        case .uri: return "/v1/chat/completions"
        case .requestURI: return "/v1/chat/completions?x=1&n=2.5"
        case .host: return "api.example.com"
        case .remoteAddr: return "10.0.0.5"
        case .remotePort: return 51234
        case .requestMethod: return "POST"
        case .scheme: return "https"
        case .serverPort: return 9080
        case .queryString: return "x=1&n=2.5"
        case .arg(let name):
            switch name {
            case "x": return "1"
            case "n": return "2.5"
            case "empty": return ""
            default: return nil
            }
        case .header(let name):
            switch name {
            case "content-type": return "application/json"
            case "x-api-version": return "2024-06-01"
            case "x-forwarded-for": return "::ffff:192.0.2.1"
            default: return nil
            }
        case .cookie(let name): return name == "session" ? "abc" : nil
        case .postArg(let path): return Self.body.value(atPath: path.joined(separator: "."))
        case .other(let name):
            switch name {
            case "route_id": return "chat"
            case "consumer_name": return "johndoe"
            default: return nil
            }
        }
    }
}

extension [UInt8] {
    /// Whether `post_arg` occurs in the bytes (a variable name cannot be written without it;
    /// `\u` escapes aside, which this check does not see through, hence bytes `p` and `\`).
    var containsPostArg: Bool {
        let needle = Array("post_arg".utf8)
        guard count >= needle.count else { return false }
        for i in 0...(count - needle.count) where self[i..<i + needle.count].elementsEqual(needle) { return true }
        return contains(UInt8(ascii: "\\"))
    }
}

@main
enum Entry {
    static func main() { runLibFuzzer(fuzzVars) }
}

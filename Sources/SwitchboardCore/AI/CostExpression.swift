import Foundation

/// `cost_expr` of ai-rate-limiting: a small, safe arithmetic language over the provider's usage
/// fields — numbers, variables, `+ - * /`, parentheses, and `abs ceil floor max min` (also
/// written `math.abs` ...). No general-purpose scripting: nothing else parses.
public indirect enum CostExpression: Sendable, Equatable {
    case number(Double)
    case variable(String)
    case negate(CostExpression)
    case binary(Character, CostExpression, CostExpression)
    case call(String, [CostExpression])

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    static let functions: Set<String> = ["abs", "ceil", "floor", "max", "min"]

    /// The longest expression read, in tokens, and the deepest nesting of parentheses, calls and
    /// minus signs: parsing and evaluating recurse, and no configuration may run the stack out
    /// (a cost_expr of a million `(` ended the process).
    public static let maximumTokens = 1000
    public static let maximumDepth = 32

    public init(_ text: String) throws(ParseError) {
        var parser = Parser(tokens: try Self.tokenize(text))
        let expression = try parser.expression()
        guard parser.index == parser.tokens.count else {
            throw ParseError(description: "unexpected '\(parser.tokens[parser.index].text)'")
        }
        self = expression
    }

    /// The cost for a usage object: missing variables are 0; the result is rounded to the
    /// nearest integer and never negative.
    public func cost(_ usage: JSONValue) -> Int {
        let value = evaluate { name in usage[name]?.doubleValue ?? 0 }
        return Saturating.int(value)
    }

    public func evaluate(_ variable: (String) -> Double) -> Double {
        switch self {
        case .number(let n): return n
        case .variable(let name): return variable(name)
        case .negate(let inner): return -inner.evaluate(variable)
        case .binary(let op, let l, let r):
            let a = l.evaluate(variable)
            let b = r.evaluate(variable)
            switch op {
            case "+": return a + b
            case "-": return a - b
            case "*": return a * b
            default: return b == 0 ? 0 : a / b
            }
        case .call(let name, let args):
            let values = args.map { $0.evaluate(variable) }
            switch name {
            case "abs": return abs(values.first ?? 0)
            case "ceil": return (values.first ?? 0).rounded(.up)
            case "floor": return (values.first ?? 0).rounded(.down)
            case "max": return values.max() ?? 0
            default: return values.min() ?? 0
            }
        }
    }

    struct Token {
        enum Kind { case number, name, symbol }
        var kind: Kind
        var text: String
    }

    static func tokenize(_ text: String) throws(ParseError) -> [Token] {
        var tokens: [Token] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            guard tokens.count < maximumTokens else {
                throw ParseError(description: "longer than \(maximumTokens) tokens")
            }
            let c = chars[i]
            if c.isWhitespace {
                i += 1
            } else if c.isNumber || c == "." {
                var j = i
                while j < chars.count, chars[j].isNumber || chars[j] == "." { j += 1 }
                tokens.append(Token(kind: .number, text: String(chars[i..<j])))
                i = j
            } else if c.isLetter || c == "_" {
                var j = i
                while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" || chars[j] == "." {
                    j += 1
                }
                tokens.append(Token(kind: .name, text: String(chars[i..<j])))
                i = j
            } else if "+-*/(),".contains(c) {
                tokens.append(Token(kind: .symbol, text: String(c)))
                i += 1
            } else {
                throw ParseError(description: "unexpected character '\(c)'")
            }
        }
        guard !tokens.isEmpty else { throw ParseError(description: "empty expression") }
        return tokens
    }

    struct Parser {
        let tokens: [Token]
        var index = 0
        var depth = 0

        mutating func peek(_ symbol: String) -> Bool {
            index < tokens.count && tokens[index].kind == .symbol && tokens[index].text == symbol
        }

        mutating func expression() throws(ParseError) -> CostExpression {
            var left = try term()
            while peek("+") || peek("-") {
                let op = Character(tokens[index].text)
                index += 1
                left = .binary(op, left, try term())
            }
            return left
        }

        mutating func term() throws(ParseError) -> CostExpression {
            var left = try factor()
            while peek("*") || peek("/") {
                let op = Character(tokens[index].text)
                index += 1
                left = .binary(op, left, try factor())
            }
            return left
        }

        mutating func factor() throws(ParseError) -> CostExpression {
            guard index < tokens.count else { throw ParseError(description: "unexpected end of expression") }
            depth += 1
            defer { depth -= 1 }
            guard depth <= CostExpression.maximumDepth else {
                throw ParseError(description: "nested deeper than \(CostExpression.maximumDepth) levels")
            }
            let token = tokens[index]
            index += 1
            switch token.kind {
            case .number:
                guard let n = Double(token.text) else { throw ParseError(description: "bad number '\(token.text)'") }
                return .number(n)
            case .name:
                let name = token.text.hasPrefix("math.") ? String(token.text.dropFirst(5)) : token.text
                if peek("(") {
                    guard CostExpression.functions.contains(name) else {
                        throw ParseError(description: "unknown function '\(token.text)'")
                    }
                    index += 1
                    var args: [CostExpression] = []
                    if !peek(")") {
                        args.append(try expression())
                        while peek(",") {
                            index += 1
                            args.append(try expression())
                        }
                    }
                    guard peek(")") else { throw ParseError(description: "missing ')'") }
                    index += 1
                    return .call(name, args)
                }
                guard !token.text.contains(".") else { throw ParseError(description: "unknown name '\(token.text)'") }
                return .variable(token.text)
            case .symbol:
                if token.text == "-" { return .negate(try factor()) }
                if token.text == "(" {
                    let inner = try expression()
                    guard peek(")") else { throw ParseError(description: "missing ')'") }
                    index += 1
                    return inner
                }
                throw ParseError(description: "unexpected '\(token.text)'")
            }
        }
    }
}

/// A quota's `limit`, `count` or `time_window` as configured: a positive integer, or a
/// variable expression `${name}` / `${name ?? default}` resolved per request (APISIX §3.1).
///
/// Anything else is refused when the configuration is written: a mistyped quota must never
/// turn the quota off.
public enum QuotaAmount: Sendable, Equatable {
    case fixed(Int)
    case variable(RequestVariable, name: String, fallback: Int?)

    /// The amount `value` configures; the error names what is wrong with it.
    public static func parse(_ value: JSONValue) -> Result<QuotaAmount, QuotaAmountError> {
        switch value {
        case .int(let n):
            return n > 0 ? .success(.fixed(n)) : .failure(QuotaAmountError("\(n) is not a positive integer"))
        case .double(let d):
            guard let n = Int(exactly: d), n > 0 else {
                return .failure(QuotaAmountError("\(d) is not a positive integer"))
            }
            return .success(.fixed(n))
        case .string(let text):
            return parse(text)
        default:
            return .failure(QuotaAmountError("must be a positive integer or a variable expression"))
        }
    }

    static func parse(_ text: String) -> Result<QuotaAmount, QuotaAmountError> {
        let trimmed = text.trimmed
        if let n = Self.positiveInteger(trimmed) { return .success(.fixed(n)) }
        let refused = QuotaAmountError(
            "\"\(text)\" is neither a positive integer nor a variable expression such as \"${http_x_limit ?? 100}\"")
        guard trimmed.hasPrefix("${"), trimmed.hasSuffix("}"), trimmed.count > 3 else { return .failure(refused) }
        let inner = String(trimmed.dropFirst(2).dropLast())
        let parts = inner.split(separator: "??", maxSplits: 1, omittingEmptySubsequences: false).map {
            String($0).trimmed
        }
        let name = parts[0]
        guard !name.isEmpty, name.utf8.allSatisfy(Self.isNameByte) else { return .failure(refused) }
        var fallback: Int?
        if parts.count > 1 {
            guard let n = Self.positiveInteger(parts[1]) else {
                return .failure(
                    QuotaAmountError("the default in \"\(text)\" must be a positive integer, not \"\(parts[1])\""))
            }
            fallback = n
        }
        return .success(.variable(RequestVariable(name: name), name: name, fallback: fallback))
    }

    /// A decimal positive integer that fits in an `Int`, or `nil`.
    public static func positiveInteger(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let n = Int(text), n > 0
        else { return nil }
        return n
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
            return true
        default: return false
        }
    }
}

/// Why a configured quota amount was refused.
public struct QuotaAmountError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    public var trimmed: String {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view = view.dropFirst() }
        while let last = view.last, last == " " || last == "\t" { view = view.dropLast() }
        return String(view)
    }
}

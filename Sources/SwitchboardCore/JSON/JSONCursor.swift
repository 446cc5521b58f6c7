/// Walks JSON text in place to find a few fields, without building a tree or allocating: the
/// stream relay reads every event of every stream, and a full ``JSONValue`` per event was a
/// seventh of a stream's CPU.
///
/// Every method answers `false` (or `nil`) both for text that ``JSONParser`` would refuse and for
/// what the cursor leaves to it (numbers of more than 300 characters, `\u` escapes of
/// surrogates, nesting beyond ``maximumDepth``): the caller then parses the
/// text with ``JSONParser``, which decides. So the cursor never accepts what the parser refuses.
public struct JSONCursor {
    public let bytes: UnsafeBufferPointer<UInt8>
    public private(set) var index = 0
    /// Deeper values are left to the parser (its own limit is 256).
    public static let maximumDepth = 64

    public init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    /// The byte at the cursor after whitespace, not consumed.
    public mutating func peek() -> UInt8? {
        skipWhitespace()
        return index < bytes.count ? bytes[index] : nil
    }

    /// Whether only whitespace is left.
    public mutating func atEnd() -> Bool {
        peek() == nil
    }

    /// A string at the cursor: the range of its contents (between the quotes) and whether it has
    /// escapes (then its bytes are not its value). `nil` for one that is not UTF-8, as the
    /// parser refuses it (escapes are ASCII and stand for whole characters, so the bytes as
    /// written are UTF-8 exactly when the value is).
    public mutating func string() -> (range: Range<Int>, escaped: Bool)? {
        guard peek() == UInt8(ascii: "\"") else { return nil }
        index += 1
        let start = index
        var escaped = false
        var ascii = true
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                guard ascii || isUTF8(start..<index) else { return nil }
                defer { index += 1 }
                return (start..<index, escaped)
            }
            if byte >= 0x80 { ascii = false }
            if byte < 0x20 { return nil }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                guard index + 1 < bytes.count else { return nil }
                switch bytes[index + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 2
                case UInt8(ascii: "u"):
                    guard let code = hex4(at: index + 2), !(0xD800...0xDFFF).contains(code) else { return nil }
                    index += 6
                default:
                    return nil
                }
                continue
            }
            index += 1
        }
        return nil
    }

    /// The value of a string found by ``string()``.
    public func decode(_ string: (range: Range<Int>, escaped: Bool)) -> String? {
        guard string.escaped else {
            // Invalid UTF-8 is the parser's to refuse (``JSONParser``): `nil`, never a repair.
            return String(validating: UnsafeBufferPointer(rebasing: bytes[string.range]), as: UTF8.self)
        }
        let quoted = string.range.lowerBound - 1..<string.range.upperBound + 1
        return (try? JSONParser.parse(UnsafeBufferPointer(rebasing: bytes[quoted])))?.stringValue
    }

    /// Whether the bytes of `range` are `text`.
    public func equals(_ range: Range<Int>, _ text: StaticString) -> Bool {
        guard range.count == text.utf8CodeUnitCount else { return false }
        let expected = UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        return UnsafeBufferPointer(rebasing: bytes[range]).elementsEqual(expected)
    }

    /// Skips one value of any kind.
    public mutating func skipValue(depth: Int = 0) -> Bool {
        guard let byte = peek() else { return false }
        switch byte {
        case UInt8(ascii: "\""): return string() != nil
        case UInt8(ascii: "{"):
            return members(depth: depth) { cursor, _ in cursor.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            return elements(depth: depth) { cursor in cursor.skipValue(depth: depth + 1) }
        case UInt8(ascii: "t"): return literal("true")
        case UInt8(ascii: "f"): return literal("false")
        case UInt8(ascii: "n"): return literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
        default: return false
        }
    }

    /// An object at the cursor: `body` is called with each member's key (a key with escapes
    /// ends the walk with `false`) and must consume the member's value.
    public mutating func members(
        depth: Int = 0, _ body: (inout JSONCursor, Range<Int>) -> Bool
    ) -> Bool {
        container(UInt8(ascii: "{"), UInt8(ascii: "}"), depth: depth) { cursor in
            guard let (key, escaped) = cursor.string(), !escaped, cursor.peek() == UInt8(ascii: ":") else {
                return false
            }
            cursor.index += 1
            return body(&cursor, key)
        }
    }

    /// An array at the cursor: `body` must consume each element.
    public mutating func elements(depth: Int = 0, _ body: (inout JSONCursor) -> Bool) -> Bool {
        container(UInt8(ascii: "["), UInt8(ascii: "]"), depth: depth, body)
    }

    /// Skips the value at the cursor: the number of its elements when it is an array, 0 for any
    /// other value, `nil` when it is not valid.
    public mutating func skipCountingElements(depth: Int = 0) -> Int? {
        guard peek() == UInt8(ascii: "[") else { return skipValue(depth: depth) ? 0 : nil }
        var count = 0
        let valid = elements(depth: depth) { cursor in
            count += 1
            return cursor.skipValue(depth: depth + 1)
        }
        return valid ? count : nil
    }

    /// Skips the value at the cursor: `.some(range of its text)` when it is an object (for the
    /// parser to read that part alone), `.some(nil)` for any other value, `nil` when it is not
    /// valid.
    public mutating func skipReturningObjectRange() -> Range<Int>?? {
        let isObject = peek() == UInt8(ascii: "{")
        let start = index
        guard skipValue() else { return nil }
        return .some(isObject ? start..<index : nil)
    }

    /// `open`, items separated by commas (each consumed by `item`), `close`.
    private mutating func container(
        _ open: UInt8, _ close: UInt8, depth: Int, _ item: (inout JSONCursor) -> Bool
    ) -> Bool {
        guard depth < Self.maximumDepth, peek() == open else { return false }
        index += 1
        if peek() == close {
            index += 1
            return true
        }
        while item(&self) {
            switch peek() {
            case UInt8(ascii: ","): index += 1
            case close:
                index += 1
                return true
            default: return false
            }
        }
        return false
    }

    // MARK: - Scalars

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    private mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard index + count <= bytes.count, equals(index..<index + count, word) else { return false }
        index += count
        return true
    }

    /// The parser's number grammar and range.
    private mutating func number() -> Bool {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { return false }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
        } else {
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { return false }
            while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        }
        guard index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") else {
            return index - start <= 300  // longer ones may not fit a Double: the parser decides
        }
        index += 1
        if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { return false }
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
        // The parser refuses what overflows a Double (1e999); exponents are rare enough to check.
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        return index - start <= 300 && Double(text)?.isFinite == true
    }

    /// Whether the bytes of `range` are well-formed UTF-8 (as `String(validating:as:)` has it).
    private func isUTF8(_ range: Range<Int>) -> Bool {
        var iterator = UnsafeBufferPointer(rebasing: bytes[range]).makeIterator()
        var decoder = Unicode.UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private func hex4(at position: Int) -> UInt32? {
        guard position + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for byte in bytes[position..<position + 4] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}

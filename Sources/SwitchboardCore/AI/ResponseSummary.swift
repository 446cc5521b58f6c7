/// What the gateway reads from a whole (non-streamed) answer: usage, the model the provider
/// reported, whether it calls tools, and its text when payloads are logged.
///
/// Read in place with ``JSONCursor`` (an embeddings answer is thousands of numbers the gateway
/// never looks at; a tree of them cost more than the rest of the request), or from the JSON tree
/// when the cursor leaves the body to the parser. Both readings agree (tested).
public struct ResponseSummary: Sendable, Equatable {
    public var usage: TokenUsage?
    public var model: String?
    public var hasToolCalls = false
    /// `choices[].message.content`, in order (only when asked for).
    public var texts: [String] = []

    public init() {}

    /// The summary of `body`, or `nil` when it is not JSON.
    public static func read(_ body: UnsafeBufferPointer<UInt8>, keepText: Bool) -> ResponseSummary? {
        if let summary = inPlace(body, keepText: keepText) { return summary }
        guard let json = try? JSONParser.parse(body) else { return nil }
        return ResponseSummary(json, keepText: keepText)
    }

    /// From the tree.
    init(_ json: JSONValue, keepText: Bool) {
        usage = TokenUsage(json["usage"])
        model = json["model"]?.stringValue
        let choices = json["choices"]?.arrayValue ?? []
        hasToolCalls = choices.contains { !($0["message"]?["tool_calls"]?.arrayValue ?? []).isEmpty }
        if keepText { texts = choices.compactMap { $0["message"]?["content"]?.stringValue } }
    }

    /// From the bytes; `nil` for what is left to the parser (repeated keys, anything the cursor
    /// does not accept).
    static func inPlace(_ bytes: UnsafeBufferPointer<UInt8>, keepText: Bool) -> ResponseSummary? {
        var cursor = JSONCursor(bytes)
        var seen = (usage: false, model: false, choices: false)
        var summary = ResponseSummary()
        var usageRange: Range<Int>?
        var model: (range: Range<Int>, escaped: Bool)?
        var texts: [(range: Range<Int>, escaped: Bool)] = []
        let walked = cursor.members { cursor, key in
            if cursor.equals(key, "usage") {
                guard !seen.usage else { return false }
                seen.usage = true
                guard let range = cursor.skipReturningObjectRange() else { return false }
                usageRange = range
                return true
            }
            if cursor.equals(key, "model") {
                guard !seen.model else { return false }
                seen.model = true
                guard cursor.peek() == UInt8(ascii: "\"") else { return cursor.skipValue() }
                model = cursor.string()
                return model != nil
            }
            guard cursor.equals(key, "choices") else { return cursor.skipValue() }
            guard !seen.choices else { return false }
            seen.choices = true
            guard cursor.peek() == UInt8(ascii: "[") else { return cursor.skipValue() }
            return cursor.elements(depth: 1) { cursor in
                guard cursor.peek() == UInt8(ascii: "{") else { return cursor.skipValue(depth: 2) }
                var message = false
                return cursor.members(depth: 2) { cursor, key in
                    guard cursor.equals(key, "message") else { return cursor.skipValue(depth: 3) }
                    guard !message else { return false }
                    message = true
                    guard cursor.peek() == UInt8(ascii: "{") else { return cursor.skipValue(depth: 3) }
                    var fields = (content: false, toolCalls: false)
                    return cursor.members(depth: 3) { cursor, key in
                        if cursor.equals(key, "tool_calls") {
                            guard !fields.toolCalls else { return false }
                            fields.toolCalls = true
                            guard let calls = cursor.skipCountingElements(depth: 4) else { return false }
                            if calls > 0 { summary.hasToolCalls = true }
                            return true
                        }
                        guard cursor.equals(key, "content") else { return cursor.skipValue(depth: 4) }
                        guard !fields.content else { return false }
                        fields.content = true
                        guard keepText, cursor.peek() == UInt8(ascii: "\"") else { return cursor.skipValue(depth: 4) }
                        guard let text = cursor.string() else { return false }
                        texts.append(text)
                        return true
                    }
                }
            }
        }
        guard walked, cursor.atEnd() else { return nil }
        if let usageRange {
            guard let json = try? JSONParser.parse(UnsafeBufferPointer(rebasing: bytes[usageRange])) else { return nil }
            summary.usage = TokenUsage(json)
        }
        if let model {
            guard let decoded = cursor.decode(model) else { return nil }
            summary.model = decoded
        }
        for text in texts {
            guard let decoded = cursor.decode(text) else { return nil }
            summary.texts.append(decoded)
        }
        return summary
    }
}

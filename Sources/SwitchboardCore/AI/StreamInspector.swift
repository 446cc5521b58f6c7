/// Reads an AI event stream on the side while it is relayed: finds where content starts,
/// collects usage, tool calls and text, and sees errors and the end. A value type; the relay
/// owns it and acts on the verdict for each event.
public struct StreamInspector: Sendable {
    public enum Verdict: Sendable, Equatable {
        /// Carries no content (role-only or empty delta): held back until content flows.
        case preamble
        /// Carries content (text, tool call, refusal): from here on the stream is committed.
        case content
        /// Only usage; dropped when the gateway asked for usage the client did not.
        case usageOnly
        /// Other events (after content started they are just relayed).
        case other
        /// `data: [DONE]` or the protocol's end event.
        case done
        /// An error event from the provider.
        case error(String)
        /// Not JSON where JSON was expected.
        case malformed
    }

    public let proto: AIProtocol
    public private(set) var usage = TokenUsage()
    public private(set) var hasToolCalls = false
    public private(set) var sawFinishReason = false
    public private(set) var sawDone = false
    public private(set) var text: [String] = []
    /// The model the provider reported.
    public private(set) var model: String?
    /// The index of the Anthropic content block text last went to (a continuation resumes it).
    public private(set) var textBlock: Int?
    let keepText: Bool

    public init(proto: AIProtocol, keepText: Bool = false) {
        self.proto = proto
        self.keepText = keepText
    }

    public mutating func inspect(_ event: SSEEvent) -> Verdict {
        inspect(event, inPlace: true)
    }

    /// `inPlace: false` always builds the JSON tree (the reference the tests hold the in-place
    /// path to).
    mutating func inspect(_ event: SSEEvent, inPlace: Bool) -> Verdict {
        let data = event.data
        if event.type == "error" { return .error(data.isEmpty ? "error event" : data) }
        if data.isEmpty { return .preamble }
        if data == "[DONE]" {
            sawDone = true
            return .done
        }
        if inPlace, proto == .openaiChat,
            let verdict = data.utf8.withContiguousStorageIfAvailable({ inspectChatInPlace($0) }) ?? nil
        {
            return verdict
        }
        guard let json = try? JSONParser.parse(data) else { return .malformed }
        if let error = json["error"], !error.isNull, json["choices"] == nil {
            return .error(error.serialized())
        }
        if model == nil, let m = json["model"]?.stringValue ?? json["message"]?["model"]?.stringValue { model = m }
        switch proto {
        case .anthropicMessages: return inspectAnthropic(json)
        case .openaiResponses: return inspectResponses(json)
        case .openaiChat: return inspectChat(json)
        case .bedrockConverse: return inspectConverse(event.type, json)
        default: return .content
        }
    }

    private mutating func inspectChat(_ json: JSONValue) -> Verdict {
        let choices = json["choices"]?.arrayValue ?? []
        if let u = TokenUsage(json["usage"]) {
            usage = u
            if choices.isEmpty { return .usageOnly }
        }
        var content = false
        for choice in choices {
            let delta = choice["delta"] ?? .null
            if let s = delta["content"]?.stringValue, !s.isEmpty {
                content = true
                if keepText { text.append(s) }
            }
            if let calls = delta["tool_calls"]?.arrayValue, !calls.isEmpty {
                content = true
                hasToolCalls = true
            }
            if let refusal = delta["refusal"]?.stringValue, !refusal.isEmpty { content = true }
            if let reason = choice["finish_reason"], !reason.isNull { sawFinishReason = true }
        }
        if content { return .content }
        return sawFinishReason ? .other : .preamble
    }

    /// ``inspectChat(_:)`` on the event's bytes, without a JSON tree (see ``JSONCursor``): the
    /// same verdict and the same state changes, or `nil` (nothing changed) for what it leaves to
    /// the parser — an error object, a repeated key, anything the cursor does not accept.
    mutating func inspectChatInPlace(_ bytes: UnsafeBufferPointer<UInt8>) -> Verdict? {
        var cursor = JSONCursor(bytes)
        var seen = ChunkKeys()
        var model: (range: Range<Int>, escaped: Bool)?
        var usageRange: Range<Int>?
        var choices = 0
        var content = false, toolCalls = false, finished = false
        var texts: [(range: Range<Int>, escaped: Bool)] = []
        let parsed = cursor.members { cursor, key in
            if cursor.equals(key, "choices") {
                guard seen.insert(.choices) else { return false }
                guard cursor.peek() == UInt8(ascii: "[") else { return cursor.skipValue() }
                return cursor.elements(depth: 1) { cursor in
                    choices += 1
                    guard cursor.peek() == UInt8(ascii: "{") else { return cursor.skipValue(depth: 2) }
                    var choiceKeys = ChunkKeys()
                    return cursor.members(depth: 2) { cursor, key in
                        if cursor.equals(key, "finish_reason") {
                            guard choiceKeys.insert(.finishReason) else { return false }
                            if cursor.peek() != UInt8(ascii: "n") { finished = true }
                            return cursor.skipValue(depth: 3)
                        }
                        guard cursor.equals(key, "delta") else { return cursor.skipValue(depth: 3) }
                        guard choiceKeys.insert(.delta) else { return false }
                        guard cursor.peek() == UInt8(ascii: "{") else { return cursor.skipValue(depth: 3) }
                        var deltaKeys = ChunkKeys()
                        return cursor.members(depth: 3) { cursor, key in
                            if cursor.equals(key, "content") || cursor.equals(key, "refusal") {
                                let isContent = cursor.equals(key, "content")
                                guard deltaKeys.insert(isContent ? .content : .refusal) else { return false }
                                guard cursor.peek() == UInt8(ascii: "\"") else { return cursor.skipValue(depth: 4) }
                                guard let text = cursor.string() else { return false }
                                if !text.range.isEmpty {
                                    content = true
                                    if isContent, keepText { texts.append(text) }
                                }
                                return true
                            }
                            if cursor.equals(key, "tool_calls") {
                                guard deltaKeys.insert(.toolCalls) else { return false }
                                guard let calls = cursor.skipCountingElements(depth: 4) else { return false }
                                if calls > 0 { (content, toolCalls) = (true, true) }
                                return true
                            }
                            return cursor.skipValue(depth: 4)
                        }
                    }
                }
            }
            if cursor.equals(key, "model") {
                guard seen.insert(.model) else { return false }
                if cursor.peek() == UInt8(ascii: "\"") {
                    model = cursor.string()
                    return model != nil
                }
                return cursor.skipValue()
            }
            if cursor.equals(key, "usage") {
                guard seen.insert(.usage) else { return false }
                guard let range = cursor.skipReturningObjectRange() else { return false }
                usageRange = range
                return true
            }
            // The cases the parser's path handles: an error object, Anthropic's `message`.
            if cursor.equals(key, "error") || cursor.equals(key, "message") { return false }
            return cursor.skipValue()
        }
        guard parsed, cursor.atEnd() else { return nil }

        // Decided: now the state changes, as inspectChat makes them.
        let decode = { cursor.decode($0) }
        var parsedUsage: TokenUsage?
        if let usageRange {
            guard let json = try? JSONParser.parse(UnsafeBufferPointer(rebasing: bytes[usageRange])) else { return nil }
            parsedUsage = TokenUsage(json)
        }
        if self.model == nil, let model { self.model = decode(model) }
        if let parsedUsage {
            usage = parsedUsage
            if choices == 0 { return .usageOnly }
        }
        if keepText { text.append(contentsOf: texts.compactMap(decode)) }
        if toolCalls { hasToolCalls = true }
        if finished { sawFinishReason = true }
        if content { return .content }
        return sawFinishReason ? .other : .preamble
    }

    /// Keys seen in one object of a chunk: a repeated one is left to the parser (whose last
    /// occurrence wins).
    private struct ChunkKeys {
        enum Key: UInt8 { case choices, model, usage, finishReason, delta, content, refusal, toolCalls }
        private var bits: UInt8 = 0
        mutating func insert(_ key: Key) -> Bool {
            let bit: UInt8 = 1 << key.rawValue
            defer { bits |= bit }
            return bits & bit == 0
        }
    }

    private mutating func inspectAnthropic(_ json: JSONValue) -> Verdict {
        switch json["type"]?.stringValue {
        case "message_start":
            if let u = TokenUsage(json["message"]?["usage"]) { usage.merge(u) }
            return .preamble
        case "content_block_start":
            if json["content_block"]?["type"]?.stringValue == "tool_use" {
                hasToolCalls = true
                return .content
            }
            return .preamble
        case "content_block_delta":
            if let s = json["delta"]?["text"]?.stringValue {
                // A provider's index, bounded: it is only ever a small position in one message.
                if let index = json["index"]?.intValue, (0...1024).contains(index) { textBlock = index }
                if keepText { text.append(s) }
            }
            return .content
        case "message_delta":
            if let u = TokenUsage(json["usage"]) { usage.merge(u) }
            sawFinishReason = true
            return .other
        case "message_stop":
            sawDone = true
            return .done
        case "ping": return .preamble
        default: return .other
        }
    }

    /// Bedrock's ConverseStream events (their type is the event stream's `:event-type`).
    private mutating func inspectConverse(_ type: String, _ json: JSONValue) -> Verdict {
        switch type {
        case "contentBlockStart":
            if json["start"]?["toolUse"] != nil {
                hasToolCalls = true
                return .content
            }
            return .preamble
        case "contentBlockDelta":
            if let s = json["delta"]?["text"]?.stringValue, keepText { text.append(s) }
            return .content
        case "messageStop":
            sawFinishReason = true
            return .other
        case "metadata":
            if let u = TokenUsage(json["usage"]) { usage = u }
            sawDone = true
            return .done
        case "contentBlockStop": return .other
        default: return .preamble  // messageStart
        }
    }

    private mutating func inspectResponses(_ json: JSONValue) -> Verdict {
        let type = json["type"]?.stringValue ?? ""
        if type == "response.completed" {
            if let u = TokenUsage(json["response"]?["usage"]) { usage = u }
            sawFinishReason = true
            sawDone = true
            return .done
        }
        if type.hasSuffix(".delta") {
            if type == "response.output_text.delta", keepText, let s = json["delta"]?.stringValue { text.append(s) }
            if type.contains("function_call") { hasToolCalls = true }
            return .content
        }
        return .preamble
    }

    /// Whether the stream ended in a complete state (end marker or a finish reason seen).
    public var isComplete: Bool { sawDone || sawFinishReason }

    /// A chat stream that has sent its finish reason and its usage: only `[DONE]` can follow.
    public var isFinished: Bool { proto == .openaiChat && sawFinishReason && !usage.isEmpty }
}

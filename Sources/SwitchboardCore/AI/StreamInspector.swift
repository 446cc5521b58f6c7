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
    let keepText: Bool

    public init(proto: AIProtocol, keepText: Bool = false) {
        self.proto = proto
        self.keepText = keepText
    }

    public mutating func inspect(_ event: SSEEvent) -> Verdict {
        let data = event.data
        if event.type == "error" { return .error(data.isEmpty ? "error event" : data) }
        if data.isEmpty { return .preamble }
        if data == "[DONE]" {
            sawDone = true
            return .done
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
            if let s = json["delta"]?["text"]?.stringValue, keepText { text.append(s) }
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

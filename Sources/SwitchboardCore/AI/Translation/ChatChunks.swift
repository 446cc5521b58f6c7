/// The OpenAI chat chunks a translated stream is written as (``MessagesToChatStream``,
/// ``ConverseToChatStream``): the role, text and tool-call deltas, the finish reason, the usage
/// chunk when the client asked for it, and `[DONE]`.
struct ChatChunks: Sendable {
    var id: String
    var model: JSONValue
    let created: Int
    let includeUsage: Bool
    /// The provider's content block index → OpenAI's tool call index.
    private var calls: [Int: Int] = [:]
    private(set) var finishReason: String?

    init(id: String, model: JSONValue, created: Int, includeUsage: Bool) {
        self.id = id
        self.model = model
        self.created = created
        self.includeUsage = includeUsage
    }

    func chunk(_ delta: JSONObject, finish: String? = nil, into out: inout [UInt8]) {
        let choice: JSONValue = [
            "index": 0, "delta": .object(delta), "finish_reason": finish.map { JSONValue.string($0) } ?? JSONValue.null,
        ]
        write(["choices": [choice]], into: &out)
    }

    func text(_ text: JSONValue, into out: inout [UInt8]) {
        chunk(["content": text], into: &out)
    }

    /// A tool call starts in the provider's content block `block`.
    mutating func toolCall(block: Int, id: JSONValue, name: JSONValue, into out: inout [UInt8]) {
        let call = calls.count
        calls[block] = call
        let start: JSONValue = [
            "index": .int(call), "id": id, "type": "function", "function": ["name": name, "arguments": ""],
        ]
        chunk(["tool_calls": [start]], into: &out)
    }

    /// More of the arguments of the tool call in content block `block`.
    func toolArguments(block: Int, _ arguments: JSONValue, into out: inout [UInt8]) {
        guard let call = calls[block] else { return }
        chunk(["tool_calls": [["index": .int(call), "function": ["arguments": arguments]]]], into: &out)
    }

    mutating func finish(_ reason: String, into out: inout [UInt8]) {
        finishReason = reason
        chunk([:], finish: reason, into: &out)
    }

    /// Whether ``end(usage:)`` has written the end.
    private(set) var ended = false

    /// The end, once: a finish reason if none came, the usage chunk if asked for, `[DONE]`;
    /// nothing when it was already written.
    mutating func end(usage: TokenUsage) -> [UInt8] {
        guard !ended else { return [] }
        ended = true
        var out: [UInt8] = []
        if finishReason == nil { finish("stop", into: &out) }
        if includeUsage { write(["choices": [], "usage": AnthropicTranslation.chatUsage(usage)], into: &out) }
        out += "data: [DONE]\n\n".utf8
        return out
    }

    private func write(_ fields: JSONObject, into out: inout [UInt8]) {
        var data: JSONObject = [
            "id": .string(id), "object": "chat.completion.chunk", "created": .int(created), "model": model,
        ]
        for (key, value) in fields { data[key] = value }
        out += "data: ".utf8
        JSONValue.object(data).write(to: &out)
        out += "\n\n".utf8
    }
}

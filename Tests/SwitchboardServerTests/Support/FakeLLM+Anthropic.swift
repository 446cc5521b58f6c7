import SwitchboardCore

/// An Anthropic Messages provider: checks what the real API checks (path, `x-api-key`,
/// `anthropic-version`, `max_tokens`, alternating user/assistant turns, no OpenAI-only fields)
/// and answers with Anthropic's message or event stream, cache usage included.
extension FakeLLM {
    static let anthropicUsage: JSONValue = [
        "input_tokens": 20, "output_tokens": 9, "cache_read_input_tokens": 5, "cache_creation_input_tokens": 3,
    ]

    /// Why Anthropic would refuse this request, or `nil`.
    static func anthropicRefusal(_ seen: Seen) -> String? {
        if seen.path != "/v1/messages" { return "not found: \(seen.path)" }
        if seen.headers[.init("x-api-key")!] == nil { return "x-api-key header is required" }
        if seen.headers[.init("anthropic-version")!] == nil { return "anthropic-version header is required" }
        if seen.headers[.authorization] != nil { return "unexpected Authorization header" }
        guard case .object(let body) = seen.body else { return "body is not an object" }
        if body["max_tokens"]?.intValue == nil { return "max_tokens: Field required" }
        for openAIOnly in ["stream_options", "max_completion_tokens", "n", "response_format", "parallel_tool_calls"]
        where body[openAIOnly] != nil {
            return "\(openAIOnly): Extra inputs are not permitted"
        }
        guard let messages = body["messages"]?.arrayValue, !messages.isEmpty else { return "messages: required" }
        var previous: String?
        for message in messages {
            guard let role = message["role"]?.stringValue, role == "user" || role == "assistant" else {
                return "messages: Unexpected role \(message["role"]?.serialized() ?? "none")"
            }
            if role == previous { return "messages: roles must alternate between user and assistant" }
            previous = role
            if let blocks = message["content"]?.arrayValue {
                for block in blocks
                where !["text", "image", "tool_use", "tool_result"].contains(block["type"]?.stringValue ?? "") {
                    return "messages: unknown content block \(block.serialized())"
                }
            } else if message["content"]?.stringValue == nil {
                return "messages: content must be a string or blocks"
            }
        }
        if let choice = body["tool_choice"], choice.objectValue == nil { return "tool_choice: must be an object" }
        for tool in body["tools"]?.arrayValue ?? [] where tool["input_schema"] == nil || tool["function"] != nil {
            return "tools: input_schema required"
        }
        return nil
    }

    static func anthropicMessage(model: String, text: String = "1+1 equals 2.", tool: Bool = false) -> String {
        var content: [JSONValue] = [["type": "text", "text": .string(text)]]
        if tool {
            content.append(["type": "tool_use", "id": "toolu_1", "name": "add", "input": ["a": 1, "b": 1]])
        }
        let body: JSONValue = [
            "id": "msg_1", "type": "message", "role": "assistant", "model": .string(model), "content": .array(content),
            "stop_reason": tool ? "tool_use" : "end_turn", "stop_sequence": nil, "usage": anthropicUsage,
        ]
        return body.serialized()
    }

    static func anthropicEvent(_ data: JSONValue) -> String {
        "event: \(data["type"]?.stringValue ?? "message")\ndata: \(data.serialized())\n\n"
    }

    /// message_start, one text block with a delta per word, message_delta (usage), message_stop.
    static func anthropicStream(model: String, words: [String]) -> [String] {
        var events = [
            anthropicEvent([
                "type": "message_start",
                "message": [
                    "id": "msg_1", "type": "message", "role": "assistant", "model": .string(model), "content": [],
                    "stop_reason": nil,
                    "usage": [
                        "input_tokens": 20, "output_tokens": 1, "cache_read_input_tokens": 5,
                        "cache_creation_input_tokens": 3,
                    ],
                ],
            ]),
            anthropicEvent([
                "type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""],
            ]),
            anthropicEvent(["type": "ping"]),
        ]
        events += words.map {
            anthropicEvent([
                "type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": .string($0)],
            ])
        }
        events.append(anthropicEvent(["type": "content_block_stop", "index": 0]))
        events.append(
            anthropicEvent([
                "type": "message_delta", "delta": ["stop_reason": "end_turn", "stop_sequence": nil],
                "usage": ["output_tokens": 9],
            ]))
        events.append(anthropicEvent(["type": "message_stop"]))
        return events
    }

    /// Answers as Anthropic does, or refuses as it would (400, Anthropic's error shape).
    static func anthropic(name: String) -> @Sendable (Seen) -> Reply {
        { seen in
            if let refusal = anthropicRefusal(seen) {
                let error = AnthropicTranslation.error(status: 400, message: refusal)
                return .json(status: 400, body: error.serialized())
            }
            let model = seen.body["model"]?.stringValue ?? "\(name)-model"
            if seen.body["stream"]?.boolValue == true {
                return .sse(events: anthropicStream(model: model, words: ["1+1", " equals", " 2."]))
            }
            return .json(status: 200, body: anthropicMessage(model: model, tool: seen.body["tools"] != nil))
        }
    }
}

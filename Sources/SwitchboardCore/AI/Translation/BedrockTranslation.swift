/// OpenAI chat ⇄ Bedrock's Converse API, so an OpenAI client can reach a Bedrock instance and a
/// Bedrock instance can sit beside OpenAI ones in one `ai-proxy-multi` (beyond APISIX, which
/// serves Bedrock to Converse clients only). Streams: ``ConverseToChatStream``.
public enum BedrockTranslation {
    /// An OpenAI chat request as a Converse request (the model goes in the URL, not the body).
    public static func converseRequest(fromChat body: JSONValue) -> JSONValue {
        var out = JSONObject()
        var system: [JSONValue] = []
        var turns = AlternatingTurns()
        for message in body["messages"]?.arrayValue ?? [] {
            let role = message["role"]?.stringValue ?? "user"
            let content = message["content"] ?? .null
            switch role {
            case "system", "developer":
                for text in AnthropicTranslation.texts(of: content) where !text.isEmpty {
                    system.append(["text": .string(text)])
                }
            case "assistant":
                var blocks = textBlocks(content)
                for call in message["tool_calls"]?.arrayValue ?? [] {
                    let arguments = call["function"]?["arguments"]?.stringValue ?? "{}"
                    let input = (try? JSONParser.parse(arguments)).flatMap { $0.objectValue.map(JSONValue.object) }
                    blocks.append([
                        "toolUse": [
                            "toolUseId": call["id"] ?? "", "name": call["function"]?["name"] ?? "",
                            "input": input ?? [:],
                        ]
                    ])
                }
                turns.append("assistant", blocks)
            case "tool":
                let text = AnthropicTranslation.texts(of: content).joined(separator: "\n")
                turns.append(
                    "user",
                    [
                        [
                            "toolResult": [
                                "toolUseId": message["tool_call_id"] ?? "", "content": [["text": .string(text)]],
                            ]
                        ]
                    ])
            default:
                turns.append("user", textBlocks(content))
            }
        }
        out["messages"] = turns.messages
        if !system.isEmpty { out["system"] = .array(system) }
        var inference = JSONObject()
        if let maxTokens = body["max_completion_tokens"] ?? body["max_tokens"] { inference["maxTokens"] = maxTokens }
        if let temperature = body["temperature"] { inference["temperature"] = temperature }
        if let topP = body["top_p"] { inference["topP"] = topP }
        if let stop = body["stop"] {
            inference["stopSequences"] = stop.stringValue.map { [.string($0)] } ?? stop
        }
        if !inference.isEmpty { out["inferenceConfig"] = .object(inference) }
        // `tool_choice: "none"` has no Converse equivalent: the tools are not offered at all.
        if let tools = body["tools"]?.arrayValue, !tools.isEmpty, body["tool_choice"] != .string("none") {
            var config: JSONObject = [
                "tools": .array(
                    tools.compactMap { tool in
                        guard let function = tool["function"] else { return nil }
                        var spec: JSONObject = ["name": function["name"] ?? ""]
                        if let description = function["description"] { spec["description"] = description }
                        spec["inputSchema"] = ["json": function["parameters"] ?? ["type": "object"]]
                        return ["toolSpec": .object(spec)]
                    })
            ]
            switch body["tool_choice"] {
            case .string("auto")?: config["toolChoice"] = ["auto": [:]]
            case .string("required")?: config["toolChoice"] = ["any": [:]]
            case .object(let named)?:
                if let name = named["function"]?["name"] { config["toolChoice"] = ["tool": ["name": name]] }
            default: break
            }
            out["toolConfig"] = .object(config)
        }
        return .object(out)
    }

    /// Text parts as Converse content blocks (images are left out: Converse wants their bytes).
    private static func textBlocks(_ content: JSONValue) -> [JSONValue] {
        AnthropicTranslation.texts(of: content).filter { !$0.isEmpty }.map { ["text": .string($0)] }
    }

    /// A Converse answer as an OpenAI chat completion.
    public static func chatAnswer(fromConverse answer: JSONValue, model: String?, created: Int) -> JSONValue {
        var text = ""
        var calls: [JSONValue] = []
        for block in answer["output"]?["message"]?["content"]?.arrayValue ?? [] {
            if let part = block["text"]?.stringValue { text += part }
            if let use = block["toolUse"] {
                calls.append([
                    "id": use["toolUseId"] ?? "", "type": "function",
                    "function": ["name": use["name"] ?? "", "arguments": .string((use["input"] ?? [:]).serialized())],
                ])
            }
        }
        var message: JSONObject = [
            "role": "assistant", "content": text.isEmpty && !calls.isEmpty ? .null : .string(text),
        ]
        if !calls.isEmpty { message["tool_calls"] = .array(calls) }
        var out: JSONObject = [
            "id": "chatcmpl-bedrock", "object": "chat.completion", "created": .int(created),
            "model": model.map { .string($0) } ?? JSONValue.null,
            "choices": [
                [
                    "index": 0, "message": .object(message),
                    "finish_reason": .string(finishReason(answer["stopReason"]?.stringValue)),
                ]
            ],
        ]
        if let usage = TokenUsage(answer["usage"]) { out["usage"] = AnthropicTranslation.chatUsage(usage) }
        return .object(out)
    }

    /// Converse's `stopReason` as OpenAI's `finish_reason`.
    static func finishReason(_ stop: String?) -> String {
        switch stop {
        case "max_tokens": return "length"
        case "tool_use": return "tool_calls"
        case "content_filtered", "guardrail_intervened": return "content_filter"
        default: return "stop"
        }
    }
}

/// Bedrock's ConverseStream events (decoded by ``EventStreamDecoder``) as OpenAI chat chunks:
/// the role, text and tool-call deltas, the finish reason, the usage chunk when the client asked
/// for it (from the closing `metadata` event), and `[DONE]`.
public struct ConverseToChatStream: StreamTranslator {
    private var chunks: ChatChunks
    private var usage = TokenUsage()

    public init(includeUsage: Bool, created: Int, model: String?) {
        chunks = ChatChunks(
            id: "chatcmpl-bedrock", model: model.map { .string($0) } ?? .null, created: created,
            includeUsage: includeUsage)
    }

    public mutating func translate(_ event: SSEEvent) -> [UInt8] {
        guard !chunks.ended, let json = try? JSONParser.parse(event.data) else { return [] }
        var out: [UInt8] = []
        let block = json["contentBlockIndex"]?.intValue
        switch event.type {
        case "messageStart":
            chunks.chunk(["role": "assistant", "content": ""], into: &out)
        case "contentBlockStart":
            guard let use = json["start"]?["toolUse"], let block else { break }
            chunks.toolCall(block: block, id: use["toolUseId"] ?? "", name: use["name"] ?? "", into: &out)
        case "contentBlockDelta":
            let delta = json["delta"] ?? .null
            if let text = delta["text"] {
                chunks.text(text, into: &out)
            } else if let input = delta["toolUse"]?["input"], let block {
                chunks.toolArguments(block: block, input, into: &out)
            }
        case "messageStop":
            chunks.finish(BedrockTranslation.finishReason(json["stopReason"]?.stringValue), into: &out)
        case "metadata":
            if let reported = TokenUsage(json["usage"]) { usage = reported }
            out += finish()
        default: break
        }
        return out
    }

    public mutating func finish() -> [UInt8] {
        chunks.end(usage: usage)
    }
}

/// Anthropic Messages ⇄ OpenAI chat, for requests, whole answers and errors (streams are
/// ``ChatToMessagesStream`` and ``MessagesToChatStream``).
///
/// `anthropic-messages → openai-chat` is APISIX's converter: a Claude Code user can be served
/// by any OpenAI-style instance. `openai-chat → anthropic-messages` goes the other way, so an
/// OpenAI client reaches an `anthropic` instance through its native API (prompt caching and its
/// usage) rather than Anthropic's OpenAI-compatible endpoint.
public enum AnthropicTranslation {
    /// The `max_tokens` sent to Anthropic when an OpenAI client gave none (Anthropic requires it).
    public static let defaultMaxTokens = 4096
    /// The API version sent when the client gave none (Anthropic requires the header).
    public static let defaultVersion = "2023-06-01"

    // MARK: - Requests

    /// An Anthropic Messages request as an OpenAI chat request.
    public static func chatRequest(fromMessages body: JSONValue) -> JSONValue {
        var out = JSONObject()
        if let model = body["model"] { out["model"] = model }
        var messages: [JSONValue] = []
        if let system = body["system"] {
            let text = system.stringValue ?? texts(of: system).joined(separator: "\n")
            if !text.isEmpty { messages.append(["role": "system", "content": .string(text)]) }
        }
        for message in body["messages"]?.arrayValue ?? [] {
            let role = message["role"]?.stringValue ?? "user"
            guard let content = message["content"] else { continue }
            if let text = content.stringValue {
                messages.append(["role": .string(role), "content": .string(text)])
                continue
            }
            let blocks = content.arrayValue ?? []
            if role == "assistant" {
                messages.append(assistantMessage(fromBlocks: blocks))
                continue
            }
            // Tool results become `tool` messages, which must follow the assistant's calls
            // directly; the rest of the turn follows them as one user message.
            var parts: [JSONValue] = []
            for block in blocks {
                switch block["type"]?.stringValue {
                case "tool_result":
                    let result = block["content"]
                    let text = result?.stringValue ?? texts(of: result ?? .null).joined(separator: "\n")
                    messages.append([
                        "role": "tool", "tool_call_id": block["tool_use_id"] ?? "", "content": .string(text),
                    ])
                case "text":
                    parts.append(["type": "text", "text": block["text"] ?? ""])
                case "image":
                    if let url = imageURL(block["source"]) {
                        parts.append(["type": "image_url", "image_url": ["url": .string(url)]])
                    }
                default: continue  // thinking, documents and the like have no chat equivalent
                }
            }
            guard !parts.isEmpty else { continue }
            let allText = parts.allSatisfy { $0["type"]?.stringValue == "text" }
            let merged: JSONValue =
                allText ? .string(parts.compactMap { $0["text"]?.stringValue }.joined(separator: "\n")) : .array(parts)
            messages.append(["role": .string(role), "content": merged])
        }
        out["messages"] = .array(messages)
        if let maxTokens = body["max_tokens"] { out["max_tokens"] = maxTokens }
        for key in ["temperature", "top_p", "stream"] { if let value = body[key] { out[key] = value } }
        if let stops = body["stop_sequences"], !(stops.arrayValue ?? []).isEmpty { out["stop"] = stops }
        if let user = body["metadata"]?["user_id"] { out["user"] = user }
        if let tools = body["tools"]?.arrayValue, !tools.isEmpty {
            out["tools"] = .array(
                tools.map { tool in
                    var function: JSONObject = ["name": tool["name"] ?? ""]
                    if let description = tool["description"] { function["description"] = description }
                    function["parameters"] = tool["input_schema"] ?? ["type": "object"]
                    return ["type": "function", "function": .object(function)]
                })
        }
        if let choice = body["tool_choice"] {
            switch choice["type"]?.stringValue {
            case "auto": out["tool_choice"] = "auto"
            case "any": out["tool_choice"] = "required"
            case "none": out["tool_choice"] = "none"
            case "tool": out["tool_choice"] = ["type": "function", "function": ["name": choice["name"] ?? ""]]
            default: break
            }
            if choice["disable_parallel_tool_use"]?.boolValue == true { out["parallel_tool_calls"] = false }
        }
        return .object(out)
    }

    /// An assistant turn's blocks as a chat message: its text, and `tool_use` as tool calls.
    private static func assistantMessage(fromBlocks blocks: [JSONValue]) -> JSONValue {
        var text = ""
        var calls: [JSONValue] = []
        for block in blocks {
            switch block["type"]?.stringValue {
            case "text": text += block["text"]?.stringValue ?? ""
            case "tool_use":
                calls.append([
                    "id": block["id"] ?? "", "type": "function",
                    "function": [
                        "name": block["name"] ?? "", "arguments": .string((block["input"] ?? [:]).serialized()),
                    ],
                ])
            default: continue
            }
        }
        var message: JSONObject = [
            "role": "assistant", "content": text.isEmpty && !calls.isEmpty ? .null : .string(text),
        ]
        if !calls.isEmpty { message["tool_calls"] = .array(calls) }
        return .object(message)
    }

    /// An OpenAI chat request as an Anthropic Messages request. Consecutive messages of one role
    /// are merged (Anthropic wants user and assistant turns to alternate).
    public static func messagesRequest(fromChat body: JSONValue) -> JSONValue {
        var out = JSONObject()
        if let model = body["model"] { out["model"] = model }
        var system: [String] = []
        var turns = AlternatingTurns()
        for message in body["messages"]?.arrayValue ?? [] {
            let role = message["role"]?.stringValue ?? "user"
            let content = message["content"] ?? .null
            switch role {
            case "system", "developer":
                let text = content.stringValue ?? texts(of: content).joined(separator: "\n")
                if !text.isEmpty { system.append(text) }
            case "assistant":
                var blocks = contentBlocks(content)
                for call in message["tool_calls"]?.arrayValue ?? [] {
                    let arguments = call["function"]?["arguments"]?.stringValue ?? "{}"
                    let input = (try? JSONParser.parse(arguments)).flatMap { $0.objectValue.map(JSONValue.object) }
                    blocks.append([
                        "type": "tool_use", "id": call["id"] ?? "", "name": call["function"]?["name"] ?? "",
                        "input": input ?? [:],
                    ])
                }
                turns.append("assistant", blocks)
            case "tool":
                let text = content.stringValue ?? texts(of: content).joined(separator: "\n")
                turns.append(
                    "user",
                    [["type": "tool_result", "tool_use_id": message["tool_call_id"] ?? "", "content": .string(text)]])
            default:
                turns.append("user", contentBlocks(content))
            }
        }
        if !system.isEmpty { out["system"] = .string(system.joined(separator: "\n\n")) }
        out["messages"] = turns.messages
        out["max_tokens"] = body["max_completion_tokens"] ?? body["max_tokens"] ?? .int(defaultMaxTokens)
        for key in ["top_p", "stream"] { if let value = body[key] { out[key] = value } }
        // OpenAI allows up to 2, Anthropic refuses more than 1.
        if let temperature = body["temperature"]?.doubleValue {
            out["temperature"] = .double(min(max(temperature, 0), 1))
        }
        if let stop = body["stop"] {
            if let one = stop.stringValue {
                out["stop_sequences"] = [.string(one)]
            } else if let many = stop.arrayValue, !many.isEmpty {
                out["stop_sequences"] = .array(many)
            }
        }
        if let user = body["user"]?.stringValue { out["metadata"] = ["user_id": .string(user)] }
        if let tools = body["tools"]?.arrayValue, !tools.isEmpty {
            out["tools"] = .array(
                tools.compactMap { tool in
                    guard let function = tool["function"] else { return nil }
                    var converted: JSONObject = ["name": function["name"] ?? ""]
                    if let description = function["description"] { converted["description"] = description }
                    converted["input_schema"] = function["parameters"] ?? ["type": "object"]
                    return .object(converted)
                })
        }
        var choice: JSONObject?
        switch body["tool_choice"] {
        case .string("auto")?: choice = ["type": "auto"]
        case .string("required")?: choice = ["type": "any"]
        case .string("none")?: choice = ["type": "none"]
        case .object(let named)?:
            if let name = named["function"]?["name"] { choice = ["type": "tool", "name": name] }
        default: break
        }
        if body["parallel_tool_calls"]?.boolValue == false, out["tools"] != nil {
            choice = choice ?? ["type": "auto"]
            choice?["disable_parallel_tool_use"] = true
        }
        if let choice { out["tool_choice"] = .object(choice) }
        return .object(out)
    }

    /// OpenAI message content (a string or parts) as Anthropic content blocks.
    private static func contentBlocks(_ content: JSONValue) -> [JSONValue] {
        if let text = content.stringValue { return text.isEmpty ? [] : [["type": "text", "text": .string(text)]] }
        return (content.arrayValue ?? []).compactMap { part in
            switch part["type"]?.stringValue {
            case "text":
                return ["type": "text", "text": part["text"] ?? ""]
            case "image_url":
                guard let url = part["image_url"]?["url"]?.stringValue ?? part["image_url"]?.stringValue else {
                    return nil
                }
                return ["type": "image", "source": imageSource(url)]
            default: return nil
            }
        }
    }

    /// `data:<media type>;base64,<data>` as a base64 source, anything else as a URL source.
    private static func imageSource(_ url: String) -> JSONValue {
        if url.hasPrefix("data:"), let comma = url.firstIndex(of: ","),
            url[..<comma].hasSuffix(";base64")
        {
            let mediaType = url[url.index(url.startIndex, offsetBy: 5)..<comma].dropLast(7)
            return [
                "type": "base64", "media_type": .string(String(mediaType)),
                "data": .string(String(url[url.index(after: comma)...])),
            ]
        }
        return ["type": "url", "url": .string(url)]
    }

    private static func imageURL(_ source: JSONValue?) -> String? {
        guard let source else { return nil }
        switch source["type"]?.stringValue {
        case "base64":
            guard let media = source["media_type"]?.stringValue, let data = source["data"]?.stringValue else {
                return nil
            }
            return "data:\(media);base64,\(data)"
        case "url": return source["url"]?.stringValue
        default: return nil
        }
    }

    /// The text of a string, or of the `text` blocks of a block list.
    public static func texts(of content: JSONValue) -> [String] {
        if let text = content.stringValue { return [text] }
        return (content.arrayValue ?? []).compactMap { block in
            block["type"]?.stringValue == "text" ? block["text"]?.stringValue : nil
        }
    }

    // MARK: - Whole answers

    /// An OpenAI chat completion as an Anthropic message.
    public static func messagesAnswer(fromChat answer: JSONValue) -> JSONValue {
        let choice = answer["choices"]?[0] ?? .null
        let message = choice["message"] ?? .null
        var content: [JSONValue] = []
        if let text = message["content"]?.stringValue, !text.isEmpty {
            content.append(["type": "text", "text": .string(text)])
        }
        for call in message["tool_calls"]?.arrayValue ?? [] {
            content.append(
                toolUse(id: call["id"], name: call["function"]?["name"], arguments: call["function"]?["arguments"]))
        }
        return [
            "id": .string(messageID(answer["id"]?.stringValue)), "type": "message", "role": "assistant",
            "model": answer["model"] ?? "", "content": .array(content),
            "stop_reason": stopReason(choice["finish_reason"]?.stringValue), "stop_sequence": nil,
            "usage": messagesUsage(TokenUsage(answer["usage"]) ?? TokenUsage()),
        ]
    }

    static func toolUse(id: JSONValue?, name: JSONValue?, arguments: JSONValue?) -> JSONValue {
        let input = arguments?.stringValue.flatMap { try? JSONParser.parse($0) }.flatMap(\.objectValue)
        return ["type": "tool_use", "id": id ?? "", "name": name ?? "", "input": .object(input ?? [:])]
    }

    /// An Anthropic message as an OpenAI chat completion.
    public static func chatAnswer(fromMessages answer: JSONValue, created: Int) -> JSONValue {
        let message = assistantMessage(fromBlocks: answer["content"]?.arrayValue ?? [])
        return [
            "id": answer["id"] ?? "", "object": "chat.completion", "created": .int(created),
            "model": answer["model"] ?? "",
            "choices": [
                [
                    "index": 0, "message": message,
                    "finish_reason": .string(finishReason(answer["stop_reason"]?.stringValue)),
                ]
            ],
            "usage": chatUsage(TokenUsage(answer["usage"]) ?? TokenUsage()),
        ]
    }

    // MARK: - Shared pieces

    static func messageID(_ upstream: String?) -> String {
        guard let upstream, !upstream.isEmpty else { return "msg_switchboard" }
        return upstream.hasPrefix("msg_") ? upstream : "msg_" + upstream
    }

    /// OpenAI's `finish_reason` as Anthropic's `stop_reason`.
    static func stopReason(_ finish: String?) -> JSONValue {
        switch finish {
        case nil: return .null
        case "length": return "max_tokens"
        case "tool_calls", "function_call": return "tool_use"
        case "content_filter": return "refusal"
        default: return "end_turn"
        }
    }

    /// Anthropic's `stop_reason` as OpenAI's `finish_reason`.
    static func finishReason(_ stop: String?) -> String {
        switch stop {
        case "max_tokens": return "length"
        case "tool_use": return "tool_calls"
        case "refusal": return "content_filter"
        default: return "stop"
        }
    }

    /// Anthropic counts cached prompt tokens apart from `input_tokens`.
    static func messagesUsage(_ usage: TokenUsage) -> JSONValue {
        var out: JSONObject = [
            "input_tokens": .int(max(0, usage.prompt - usage.cacheRead - usage.cacheCreation)),
            "output_tokens": .int(usage.completion),
        ]
        if usage.cacheRead > 0 { out["cache_read_input_tokens"] = .int(usage.cacheRead) }
        if usage.cacheCreation > 0 { out["cache_creation_input_tokens"] = .int(usage.cacheCreation) }
        return .object(out)
    }

    /// OpenAI's `prompt_tokens` include the cached ones.
    static func chatUsage(_ usage: TokenUsage) -> JSONValue {
        let prompt = Saturating.count(usage.prompt + usage.cacheRead + usage.cacheCreation)
        var out: JSONObject = [
            "prompt_tokens": .int(prompt), "completion_tokens": .int(usage.completion),
            "total_tokens": .int(Saturating.count(prompt + usage.completion)),
        ]
        if usage.cacheRead > 0 || usage.cacheCreation > 0 {
            out["prompt_tokens_details"] = [
                "cached_tokens": .int(usage.cacheRead), "cache_creation_input_tokens": .int(usage.cacheCreation),
            ]
        }
        return .object(out)
    }

    // MARK: - Errors

    /// An error in Anthropic's shape, typed by status as Anthropic types them.
    public static func error(status: Int, message: String) -> JSONValue {
        let type: String
        switch status {
        case 400: type = "invalid_request_error"
        case 401: type = "authentication_error"
        case 403: type = "permission_error"
        case 404: type = "not_found_error"
        case 413: type = "request_too_large"
        case 429: type = "rate_limit_error"
        case 529, 503: type = "overloaded_error"
        case 504: type = "timeout_error"
        default: type = status >= 500 ? "api_error" : "invalid_request_error"
        }
        return ["type": "error", "error": ["type": .string(type), "message": .string(message)]]
    }

    /// Any error body (OpenAI's, a provider's, plain text) in Anthropic's shape; an Anthropic
    /// error is kept as it is.
    public static func error(status: Int, body: [UInt8]) -> JSONValue {
        let parsed = try? JSONParser.parse(body)
        if let parsed, parsed["type"]?.stringValue == "error", parsed["error"]?.objectValue != nil { return parsed }
        let message =
            parsed?["error"]?["message"]?.stringValue ?? parsed?["error"]?.stringValue
            ?? parsed?["message"]?.stringValue ?? parsed?["error_msg"]?.stringValue
            ?? String(decoding: body.prefix(2048), as: UTF8.self)
        return error(status: status, message: message.isEmpty ? "upstream status \(status)" : message)
    }
}

/// Messages whose user and assistant turns alternate, as Anthropic and Bedrock require: blocks
/// of a turn with the same role as the one before join it.
struct AlternatingTurns {
    private var turns: [(role: String, blocks: [JSONValue])] = []

    mutating func append(_ role: String, _ blocks: [JSONValue]) {
        guard !blocks.isEmpty else { return }
        if let last = turns.last, last.role == role {
            turns[turns.count - 1].blocks += blocks
        } else {
            turns.append((role, blocks))
        }
    }

    var messages: JSONValue {
        .array(turns.map { ["role": .string($0.role), "content": .array($0.blocks)] })
    }
}

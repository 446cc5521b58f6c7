/// Turns a provider's event stream into the client's protocol, one event at a time. The relay
/// calls ``translate(_:)`` for every event in order (held or not) and ``finish()`` when the
/// stream ends complete without the protocol's own end event; `finish` after the end event
/// adds nothing.
public protocol StreamTranslator: Sendable {
    mutating func translate(_ event: SSEEvent) -> [UInt8]
    mutating func finish() -> [UInt8]
}

/// A continuation of an Anthropic message the client is already receiving, from an Anthropic
/// provider: its own start events are dropped by the relay (held preamble), and its blocks are
/// renumbered so that its first relayed one is the text block the client has open (and any
/// later ones follow it).
public struct AnthropicResume: StreamTranslator {
    let textBlock: Int
    /// Added to the continuation's indices; fixed by the first event that carries one.
    private var shift: Int?

    public init(textBlock: Int) {
        self.textBlock = textBlock
    }

    public mutating func translate(_ event: SSEEvent) -> [UInt8] {
        guard var json = try? JSONParser.parse(event.data), let index = json["index"]?.intValue,
            (0...1024).contains(index)
        else { return event.raw }
        let shift = self.shift ?? textBlock - index
        self.shift = shift
        guard shift != 0 else { return event.raw }
        json["index"] = .int(index + shift)
        var out: [UInt8] = []
        ChatToMessagesStream.write(event.type, json, into: &out)
        return out
    }

    public mutating func finish() -> [UInt8] { [] }
}

/// The translator from `target` (what the provider speaks) to `client`, if they differ.
public func makeStreamTranslator(
    from target: AIProtocol, to client: AIProtocol, clientBody: JSONValue, created: Int, model: String? = nil
) -> (any StreamTranslator)? {
    switch (target, client) {
    case (.bedrockConverse, .openaiChat):
        let includeUsage = clientBody["stream_options"]?["include_usage"]?.boolValue == true
        return ConverseToChatStream(includeUsage: includeUsage, created: created, model: model)
    case (.openaiChat, .anthropicMessages): return ChatToMessagesStream()
    case (.anthropicMessages, .openaiChat):
        let includeUsage = clientBody["stream_options"]?["include_usage"]?.boolValue == true
        return MessagesToChatStream(includeUsage: includeUsage, created: created)
    default: return nil
    }
}

/// OpenAI chat chunks as Anthropic's `message_start`, `content_block_start`,
/// `content_block_delta`, `content_block_stop`, `message_delta` (with the usage) and
/// `message_stop` events.
public struct ChatToMessagesStream: StreamTranslator {
    private enum Block: Equatable {
        case text(index: Int)
        case tool(index: Int, call: Int)

        var index: Int {
            switch self {
            case .text(let index), .tool(let index, _): return index
            }
        }
    }

    private var started = false
    private var ended = false
    private var nextIndex = 0
    private var open: Block?
    private var stopReason: JSONValue = .null
    private var usage = TokenUsage()

    public init() {}

    /// Continues a message the client is already receiving (a stream continuation): no
    /// `message_start`, and text goes on in the open text block `textBlock`.
    public init(resumingTextBlock textBlock: Int) {
        started = true
        open = .text(index: textBlock)
        nextIndex = textBlock + 1
    }

    /// The index of the text block text currently goes to, if one is open.
    public var openTextBlock: Int? {
        if case .text(let index)? = open { return index }
        return nil
    }

    public mutating func translate(_ event: SSEEvent) -> [UInt8] {
        if event.data == "[DONE]" { return finish() }
        guard !ended, let chunk = try? JSONParser.parse(event.data) else { return [] }
        var out: [UInt8] = []
        start(chunk, into: &out)
        if let reported = TokenUsage(chunk["usage"]) { usage = reported }
        // Anthropic answers have one choice; other choices (n > 1) have nowhere to go.
        for choice in chunk["choices"]?.arrayValue ?? [] where (choice["index"]?.intValue ?? 0) == 0 {
            let delta = choice["delta"] ?? .null
            if let text = delta["content"]?.stringValue, !text.isEmpty {
                if case .text = open {
                } else {
                    close(into: &out)
                    open = .text(index: nextIndex)
                    nextIndex += 1
                    Self.write(
                        "content_block_start",
                        [
                            "type": "content_block_start", "index": .int(open?.index ?? 0),
                            "content_block": ["type": "text", "text": ""],
                        ], into: &out)
                }
                Self.write(
                    "content_block_delta",
                    [
                        "type": "content_block_delta", "index": .int(open?.index ?? 0),
                        "delta": ["type": "text_delta", "text": .string(text)],
                    ], into: &out)
            }
            for call in delta["tool_calls"]?.arrayValue ?? [] {
                let number = call["index"]?.intValue ?? 0
                let function = call["function"] ?? .null
                if case .tool(_, number) = open {
                } else {
                    close(into: &out)
                    open = .tool(index: nextIndex, call: number)
                    nextIndex += 1
                    Self.write(
                        "content_block_start",
                        [
                            "type": "content_block_start", "index": .int(open?.index ?? 0),
                            "content_block": [
                                "type": "tool_use", "id": call["id"] ?? "", "name": function["name"] ?? "",
                                "input": [:],
                            ],
                        ], into: &out)
                }
                if let arguments = function["arguments"]?.stringValue, !arguments.isEmpty {
                    Self.write(
                        "content_block_delta",
                        [
                            "type": "content_block_delta", "index": .int(open?.index ?? 0),
                            "delta": ["type": "input_json_delta", "partial_json": .string(arguments)],
                        ], into: &out)
                }
            }
            if let reason = choice["finish_reason"]?.stringValue {
                stopReason = AnthropicTranslation.stopReason(reason)
                close(into: &out)
            }
        }
        return out
    }

    public mutating func finish() -> [UInt8] {
        guard !ended else { return [] }
        ended = true
        var out: [UInt8] = []
        start(.null, into: &out)
        close(into: &out)
        Self.write(
            "message_delta",
            [
                "type": "message_delta",
                "delta": ["stop_reason": stopReason.isNull ? "end_turn" : stopReason, "stop_sequence": nil],
                "usage": AnthropicTranslation.messagesUsage(usage),
            ], into: &out)
        Self.write("message_stop", ["type": "message_stop"], into: &out)
        return out
    }

    private mutating func start(_ chunk: JSONValue, into out: inout [UInt8]) {
        guard !started else { return }
        started = true
        let message: JSONValue = [
            "id": .string(AnthropicTranslation.messageID(chunk["id"]?.stringValue)), "type": "message",
            "role": "assistant", "model": chunk["model"] ?? "", "content": [], "stop_reason": nil,
            "stop_sequence": nil, "usage": ["input_tokens": 0, "output_tokens": 0],
        ]
        Self.write("message_start", ["type": "message_start", "message": message], into: &out)
    }

    private mutating func close(into out: inout [UInt8]) {
        guard let block = open else { return }
        open = nil
        Self.write("content_block_stop", ["type": "content_block_stop", "index": .int(block.index)], into: &out)
    }

    public static func write(_ name: String, _ data: JSONValue, into out: inout [UInt8]) {
        out += "event: \(name)\ndata: ".utf8
        data.write(to: &out)
        out += "\n\n".utf8
    }
}

/// Anthropic's events as OpenAI chat chunks: a role chunk, text and tool-call deltas, the
/// finish reason, the usage chunk when the client asked for it, and `[DONE]`.
public struct MessagesToChatStream: StreamTranslator {
    private var chunks: ChatChunks
    private var usage = TokenUsage()

    public init(includeUsage: Bool, created: Int) {
        chunks = ChatChunks(id: "chatcmpl-switchboard", model: "", created: created, includeUsage: includeUsage)
    }

    public mutating func translate(_ event: SSEEvent) -> [UInt8] {
        guard !chunks.ended, let json = try? JSONParser.parse(event.data) else { return [] }
        var out: [UInt8] = []
        switch json["type"]?.stringValue {
        case "message_start":
            let message = json["message"] ?? .null
            if let upstream = message["id"]?.stringValue { chunks.id = upstream }
            if let m = message["model"] { chunks.model = m }
            if let reported = TokenUsage(message["usage"]) { usage.merge(reported) }
            chunks.chunk(["role": "assistant", "content": ""], into: &out)
        case "content_block_start":
            let block = json["content_block"] ?? .null
            guard block["type"]?.stringValue == "tool_use", let index = json["index"]?.intValue else { break }
            chunks.toolCall(block: index, id: block["id"] ?? "", name: block["name"] ?? "", into: &out)
        case "content_block_delta":
            let delta = json["delta"] ?? .null
            switch delta["type"]?.stringValue {
            case "text_delta":
                chunks.text(delta["text"] ?? "", into: &out)
            case "input_json_delta":
                guard let index = json["index"]?.intValue else { break }
                chunks.toolArguments(block: index, delta["partial_json"] ?? "", into: &out)
            default: break  // thinking and signatures have no chat equivalent
            }
        case "message_delta":
            if let reported = TokenUsage(json["usage"]) { usage.merge(reported) }
            if let stop = json["delta"]?["stop_reason"]?.stringValue {
                chunks.finish(AnthropicTranslation.finishReason(stop), into: &out)
            }
        case "message_stop":
            out += finish()
        default: break
        }
        return out
    }

    public mutating func finish() -> [UInt8] {
        chunks.end(usage: usage)
    }
}

import Foundation
import NIOHTTP1
import SwitchboardCore
import Testing

/// Anthropic Messages clients (Claude Code, the Anthropic SDKs) served by Anthropic natively and
/// by OpenAI-style instances through translation, and OpenAI clients served by Anthropic's
/// native API.
@Suite struct AnthropicClientTests {
    /// An `anthropic` instance on `llm`, with Anthropic's own header auth.
    static func claude(_ name: String, _ llm: FakeLLM, extra: String = "") -> String {
        #"{"name":"\#(name)","provider":"anthropic","weight":1,"auth":{"header":{"x-api-key":"sk-ant-\#(name)"}},"override":{"endpoint":"\#(llm.endpoint)"}\#(extra)}"#
    }

    static let messagesBody = """
        {"model":"claude-sonnet","max_tokens":300,"system":"Be brief.","stop_sequences":["END"],
         "messages":[{"role":"user","content":[{"type":"text","text":"What is 1+1?"}]}],
         "tools":[{"name":"add","input_schema":{"type":"object"}}],"tool_choice":{"type":"auto"}}
        """

    /// `(event name, data)` of every SSE event in `text`.
    static func events(_ text: String) throws -> [(name: String, data: JSONValue)] {
        var decoder = SSEDecoder()
        return try decoder.feed(Array(text.utf8)[...]).map {
            ($0.type, $0.data == "[DONE]" ? "[DONE]" : try JSONParser.parse($0.data))
        }
    }

    @Test func anAnthropicClientIsServedByAnOpenAIInstance() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(accessLog: .text("$llm_prompt_tokens $llm_completion_tokens $upstream_uri")))
            try await f.route(#"{"instances":[\#(f.instance("a", f.a))]}"#, uri: "/v1/messages")
            let result = try await f.gw.proxy(
                .POST, "/v1/messages", body: Self.messagesBody,
                headers: [("x-api-key", "gateway-key"), ("anthropic-version", "2023-06-01")])
            #expect(result.status == 200, "\(result.body)")
            #expect(
                result.json
                    == [
                        "id": "msg_chatcmpl-1", "type": "message", "role": "assistant", "model": "claude-sonnet",
                        "content": [["type": "text", "text": "1+1 equals 2."]], "stop_reason": "end_turn",
                        "stop_sequence": nil, "usage": ["input_tokens": 23, "output_tokens": 8],
                    ])
            let seen = try #require(f.a.requests.first)
            #expect(seen.path == "/v1/chat/completions")
            #expect(
                seen.body["messages"]
                    == [["role": "system", "content": "Be brief."], ["role": "user", "content": "What is 1+1?"]])
            #expect(seen.body["max_tokens"] == 300)
            #expect(seen.body["stop"] == ["END"])
            #expect(seen.body["tool_choice"] == "auto")
            #expect(seen.body["tools"]?[0]?["function"]?["name"] == "add")
            // Only the instance's credentials reach the provider; Anthropic's headers do not.
            #expect(seen.headers[.authorization] == "Bearer k-a")
            #expect(seen.headers[.init("x-api-key")!] == nil)
            #expect(seen.headers[.init("anthropic-version")!] == nil)
            #expect(try await f.gw.finalAccessLog() == "23 8 /v1/chat/completions\n")
        }
    }

    @Test func anAnthropicClientStreamsFromAnOpenAIInstance() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start(accessLog: .text("$request_type $llm_total_tokens")))
            try await f.route(#"{"instances":[\#(f.instance("a", f.a))]}"#, uri: "/v1/messages")
            let body = #"{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
            let result = try await f.gw.proxy(.POST, "/v1/messages", body: body)
            #expect(result.status == 200)
            #expect(result.headers.first(name: "content-type") == "text/event-stream")
            let events = try Self.events(result.body)
            #expect(
                events.map(\.name) == [
                    "message_start", "content_block_start", "content_block_delta", "content_block_delta",
                    "content_block_delta", "content_block_stop", "message_delta", "message_stop",
                ])
            let text = events.compactMap { $0.data["delta"]?["text"]?.stringValue }.joined()
            #expect(text == "1+1 equals 2.")
            #expect(events[6].data["usage"] == ["input_tokens": 23, "output_tokens": 8])
            #expect(events[6].data["delta"]?["stop_reason"] == "end_turn")
            // The gateway asked for the usage it reports.
            #expect(f.a.requests.first?.body["stream_options"] == ["include_usage": true])
            #expect(try await f.gw.finalAccessLog() == "ai_stream 31\n")
        }
    }

    @Test func anAnthropicClientReachesAnthropicNatively() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply(FakeLLM.anthropic(name: "a"))
            try await f.route(#"{"instances":[\#(Self.claude("c", f.a))]}"#, uri: "/v1/messages")
            let result = try await f.gw.proxy(
                .POST, "/v1/messages", body: Self.messagesBody,
                headers: [("x-api-key", "gateway-key"), ("anthropic-beta", "prompt-caching-2024-07-31")])
            #expect(result.status == 200, "\(result.body)")
            #expect(result.json["content"]?[1]?["type"] == "tool_use")
            let seen = try #require(f.a.requests.first)
            #expect(seen.rawBody == Self.messagesBody)  // sent as the client wrote it
            #expect(seen.headers[.init("x-api-key")!] == "sk-ant-c")
            #expect(seen.headers[.init("anthropic-version")!] == AnthropicTranslation.defaultVersion)
            #expect(seen.headers[.init("anthropic-beta")!] == "prompt-caching-2024-07-31")
        }
    }

    @Test func anOpenAIClientReachesAnthropicNativelyWithCacheUsage() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(
                    accessLog: .text(
                        "$llm_prompt_tokens $llm_completion_tokens $llm_cache_read_input_tokens $llm_cache_creation_input_tokens $upstream_uri"
                    )))
            f.a.reply(FakeLLM.anthropic(name: "a"))
            try await f.route(#"{"instances":[\#(Self.claude("c", f.a))]}"#, uri: "/v1/*")
            let whole = try await f.gw.proxy(
                .POST, "/v1/chat/completions",
                body:
                    #"{"model":"claude-sonnet","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 1+1?"}]}"#,
                headers: [("Authorization", "Bearer gateway-key")])
            #expect(whole.status == 200, "\(whole.body)")
            #expect(whole.json["object"] == "chat.completion")
            #expect(whole.json["choices"]?[0]?["message"] == ["role": "assistant", "content": "1+1 equals 2."])
            #expect(whole.json["choices"]?[0]?["finish_reason"] == "stop")
            #expect(
                whole.json["usage"]
                    == [
                        "prompt_tokens": 28, "completion_tokens": 9, "total_tokens": 37,
                        "prompt_tokens_details": ["cached_tokens": 5, "cache_creation_input_tokens": 3],
                    ])
            let seen = try #require(f.a.requests.first)
            #expect(seen.body["system"] == "Be brief.")
            #expect(seen.body["max_tokens"] == .int(AnthropicTranslation.defaultMaxTokens))
            #expect(seen.headers[.authorization] == nil)

            let streamed = try await f.gw.proxy(
                .POST, "/v1/chat/completions",
                body:
                    #"{"model":"claude-sonnet","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#
            )
            #expect(streamed.status == 200, "\(streamed.body)")
            let chunks = dataLines(streamed.body)
            #expect(chunks.last == "[DONE]")
            let parsed = try chunks.dropLast().map { try JSONParser.parse($0) }
            #expect(parsed.first?["choices"]?[0]?["delta"] == ["role": "assistant", "content": ""])
            #expect(
                parsed.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined() == "1+1 equals 2.")
            #expect(parsed.contains { $0["choices"]?[0]?["finish_reason"] == "stop" })
            #expect(parsed.last?["usage"]?["prompt_tokens"] == 28)
            #expect(f.a.requests.last?.body["stream_options"] == nil)

            // The stream's log phase runs once its last byte is written, after the client has it.
            let streamLabels = ["node": "c", "request_type": "ai_stream"]
            #expect(
                try await eventually {
                    try await f.gw.sample("switchboard_llm_cache_read_input_tokens", streamLabels) == 5
                })
            #expect(try await f.gw.sample("switchboard_llm_cache_creation_input_tokens", streamLabels) == 3)
            let chatLabels = ["node": "c", "request_type": "ai_chat"]
            #expect(try await f.gw.sample("switchboard_llm_cache_read_input_tokens", chatLabels) == 5)
            #expect(try await f.gw.sample("switchboard_llm_cache_creation_input_tokens", chatLabels) == 3)
            let log = try await f.gw.finalAccessLog()  // (stops the gateway)
            #expect(log == "20 9 5 3 /v1/messages\n20 9 5 3 /v1/messages\n")
        }
    }

    @Test func aClaudeCodeUserFallsBackFromAnthropicToAnOpenAIModel() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let overloaded = AnthropicTranslation.error(status: 529, message: "Overloaded").serialized()
            f.a.reply { _ in .json(status: 529, body: overloaded) }
            let instances = #"[\#(Self.claude("claude", f.a, extra: #","priority":1"#)),\#(f.instance("gpt", f.b))]"#
            try await f.route(#"{"fallback_strategy":["http_5xx"],"instances":\#(instances)}"#, uri: "/v1/messages")
            let body = #"{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
            let result = try await f.gw.proxy(.POST, "/v1/messages", body: body)
            #expect(result.status == 200)
            let events = try Self.events(result.body)
            #expect(events.first?.name == "message_start")
            #expect(events.last?.name == "message_stop")
            #expect(f.a.requests.map(\.path) == ["/v1/messages"])
            #expect(f.b.requests.map(\.path) == ["/v1/chat/completions"])

            // Nothing left to fall back to: the client gets Anthropic's error shape (status 502
            // as for every client when every instance failed).
            f.b.reply { _ in .json(status: 500, body: #"{"error":{"message":"upstream boom","type":"server_error"}}"#) }
            let failed = try await f.gw.proxy(.POST, "/v1/messages", body: body)
            #expect(failed.status == 502)
            #expect(failed.json == ["type": "error", "error": ["type": "api_error", "message": "upstream boom"]])
        }
    }

    @Test func anAnthropicStreamThatBreaksAfterContentEndsWithAnErrorEvent() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let cut = Array(FakeLLM.chatStream(model: "m", words: ["Hel", "lo"], includeUsage: false).prefix(3))
            f.a.reply { _ in .sse(events: cut, end: .cut) }
            try await f.route(#"{"instances":[\#(f.instance("a", f.a))]}"#, uri: "/v1/messages")
            let body = #"{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
            let result = try await f.gw.proxy(.POST, "/v1/messages", body: body)
            let events = try Self.events(result.body)
            #expect(events.map(\.name).contains("content_block_delta"))
            #expect(!events.map(\.name).contains("message_stop"))
            #expect(events.last?.name == "error")
            #expect(events.last?.data["error"]?["type"] == "api_error")
        }
    }

    @Test func aBrokenAnthropicStreamIsContinuedOnAnAnthropicInstanceWithAPrefill() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            // a: an OpenAI-style instance that cuts after "Hel lo " (held at the gate until the
            // client has it); b: Anthropic, which continues the prefilled answer.
            let words = ["Hel", "lo "]
            let cut = Array(FakeLLM.chatStream(model: "m", words: words, includeUsage: false).prefix(3))
            f.a.reply { _ in .sse(events: cut, end: .cut, gateAfter: cut.count) }
            f.b.reply(FakeLLM.anthropic(name: "b"))
            let instances =
                #"[\#(f.instance("a", f.a, extra: #","priority":1,"supports_assistant_prefill":true"#)),\#(Self.claude("b", f.b, extra: #","supports_assistant_prefill":true"#))]"#
            try await f.route(#"{"stream_continuation":true,"instances":\#(instances)}"#, uri: "/v1/messages")
            let body = #"{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
            let result = try await f.gw.streamOpeningGate(of: f.a, after: "lo ", body: body, path: "/v1/messages")
            let events = try Self.events(result.body)
            // One message: the continuation's own start events are not relayed.
            #expect(events.filter { $0.name == "message_start" }.count == 1)
            #expect(events.filter { $0.name == "content_block_start" }.count == 1)
            #expect(Set(events.compactMap { $0.data["index"]?.intValue }) == [0])
            #expect(events.compactMap { $0.data["delta"]?["text"]?.stringValue }.joined() == "Hello 1+1 equals 2.")
            #expect(events.last?.name == "message_stop")
            #expect(!events.contains { $0.name == "error" })
            // Anthropic got the answer so far as an assistant prefill, without its trailing space.
            #expect(
                f.b.requests.first?.body["messages"]?.arrayValue?.last == ["role": "assistant", "content": "Hello"])
        }
    }

    @Test func aBrokenNativeStreamIsContinuedOnAnOpenAIInstanceInTheSameTextBlock() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            // a: Anthropic with a thinking block first, so the text is block 1; it cuts mid-text.
            let events = [
                FakeLLM.anthropicEvent([
                    "type": "message_start",
                    "message": ["id": "msg_a", "model": "claude", "usage": ["input_tokens": 3]],
                ]),
                FakeLLM.anthropicEvent([
                    "type": "content_block_start", "index": 0, "content_block": ["type": "thinking", "thinking": ""],
                ]),
                FakeLLM.anthropicEvent(["type": "content_block_stop", "index": 0]),
                FakeLLM.anthropicEvent([
                    "type": "content_block_start", "index": 1, "content_block": ["type": "text", "text": ""],
                ]),
                FakeLLM.anthropicEvent([
                    "type": "content_block_delta", "index": 1, "delta": ["type": "text_delta", "text": "The answer"],
                ]),
            ]
            f.a.reply { _ in .sse(events: events, end: .cut, gateAfter: events.count) }
            let instances =
                #"[\#(Self.claude("a", f.a, extra: #","priority":1"#)),\#(f.instance("b", f.b, extra: #","supports_assistant_prefill":true"#))]"#
            try await f.route(#"{"stream_continuation":true,"instances":\#(instances)}"#, uri: "/v1/messages")
            let body = #"{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#
            let result = try await f.gw.streamOpeningGate(
                of: f.a, after: "The answer", body: body, path: "/v1/messages")
            // Exactly what the client must see: a's events as they came, then b's continuation in
            // a's text block 1, one message_start, and the end of the message.
            let delta = { (text: String) -> String in
                FakeLLM.anthropicEvent([
                    "type": "content_block_delta", "index": 1, "delta": ["type": "text_delta", "text": .string(text)],
                ])
            }
            let end = [
                FakeLLM.anthropicEvent(["type": "content_block_stop", "index": 1]),
                FakeLLM.anthropicEvent([
                    "type": "message_delta", "delta": ["stop_reason": "end_turn", "stop_sequence": nil],
                    "usage": ["input_tokens": 23, "output_tokens": 8],
                ]),
                FakeLLM.anthropicEvent(["type": "message_stop"]),
            ]
            let expected = events + ["1+1", " equals", " 2."].map(delta) + end
            #expect(result.body == expected.joined())
            // b (OpenAI-style) got the conversation translated, with the prefill last.
            #expect(f.b.requests.first?.path == "/v1/chat/completions")
            #expect(
                f.b.requests.first?.body["messages"]?.arrayValue?.last == [
                    "role": "assistant", "content": "The answer",
                ])
        }
    }

    @Test func theOfficialAnthropicClientJustWorks() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let anthropic = FakeLLM.anthropic(name: "a")
            f.a.reply { seen in
                guard seen.body["model"] == "refuse-me" else { return anthropic(seen) }
                return .json(
                    status: 404, body: AnthropicTranslation.error(status: 404, message: "no model").serialized())
            }
            f.b.reply { seen in
                guard seen.body["model"] == "refuse-me" else { return FakeLLM.standard(name: "b")(seen) }
                return .json(
                    status: 404, body: #"{"error":{"message":"no such model","type":"invalid_request_error"}}"#)
            }
            try await f.route(#"{"instances":[\#(f.instance("gpt", f.b))]}"#, uri: "/oa/v1/messages", id: "oa")
            try await f.route(#"{"instances":[\#(Self.claude("claude", f.a))]}"#, uri: "/an/v1/messages", id: "an")

            let script = Spawned.clientScript("anthropic_client.py")
            let result = try await Spawned.finish(
                "python3", [script, f.gw.proxyBase + "/oa", f.gw.proxyBase + "/an"])
            #expect(result.status == 0, "\(result.stderr)")
            let seen = try JSONParser.parse(Array(result.stdout.utf8))
            #expect(
                seen[0]
                    == [
                        "whole": ["text": "1+1 equals 2.", "stop_reason": "end_turn", "output_tokens": 8],
                        "stream": ["text": "1+1 equals 2.", "stop_reason": "end_turn", "output_tokens": 8],
                        "error": ["status": 404, "type": "not_found_error"],
                    ])
            #expect(
                seen[1]
                    == [
                        "whole": ["text": "1+1 equals 2.", "stop_reason": "end_turn", "output_tokens": 9],
                        "stream": ["text": "1+1 equals 2.", "stop_reason": "end_turn", "output_tokens": 9],
                        "error": ["status": 404, "type": "not_found_error"],
                    ])
            #expect(f.b.requests.map(\.path) == Array(repeating: "/v1/chat/completions", count: 3))
            #expect(f.a.requests.map(\.path) == Array(repeating: "/v1/messages", count: 3))
        }
    }

    @Test func theAnthropicFakeRefusesOpenAIShapedBodies() async throws {
        // The fake must fail what Anthropic fails, or the tests above would prove nothing.
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply(FakeLLM.anthropic(name: "a"))
            // A passthrough route sends the client's OpenAI body to /v1/messages as is.
            try await f.route(
                #"{"instances":[{"name":"raw","provider":"openai-compatible","weight":1,"auth":{"header":{"x-api-key":"k","anthropic-version":"2023-06-01"}},"override":{"endpoint":"\#(f.a.endpoint)/v1/messages"}}]}"#,
                uri: "/raw")
            let result = try await f.gw.proxy(
                .POST, "/raw",
                body:
                    #"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"x"},{"role":"user","content":"hi"}]}"#
            )
            #expect(result.status == 400)
            #expect(result.json["type"] == "error")
        }
    }
}

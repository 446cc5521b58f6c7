import Foundation
import NIOHTTP1
import SwitchboardCore
import Testing

@Suite struct AIProtocolTests {
    @Test func anthropicMessagesPassThroughWithMergedStreamUsage() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(
                    accessLog: .text("$request_type $llm_prompt_tokens $llm_completion_tokens $llm_has_tool_calls")))
            let events = [
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n",
                "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
                "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":5}}\n\n",
                "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            ]
            f.a.reply { _ in .sse(events: events) }
            let instance = f.instance("claude", f.a, provider: "anthropic", extra: #","options":{"max_tokens":64}"#)
            try await f.route(#"{"instances":[\#(instance)]}"#, uri: "/v1/messages")
            let result = try await f.gw.proxy(
                .POST, "/v1/messages",
                body: #"{"model":"claude","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(result.status == 200)
            #expect(result.body == events.joined())
            #expect(f.a.requests.first?.path == "/v1/messages")
            #expect(f.a.requests.first?.body["stream_options"] == nil)
            let log = try await f.gw.finalAccessLog()
            #expect(log == "ai_stream 10 5 false\n")
        }
    }

    @Test func responsesAPIAndPassthrough() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(accessLog: .text("$llm_prompt_tokens $llm_completion_tokens $upstream_uri")))
            f.a.reply { seen in
                .json(
                    status: 200,
                    body: #"{"object":"response","usage":{"input_tokens":4,"output_tokens":6,"total_tokens":10}}"#)
            }
            try await f.route(#"{"instances":[\#(f.instance("a", f.a))]}"#, uri: "/*")
            let responses = try await f.gw.proxy(
                .POST, "/v1/responses", body: #"{"model":"gpt-4o","input":"hi","stream":false}"#)
            #expect(responses.status == 200)
            #expect((try await f.gw.admin(.PATCH, "/routes/ai", #"{"methods":["POST","PUT"]}"#)).status == 200)
            let passthrough = try await f.gw.proxy(.PUT, "/custom/path?x=1", body: #"{"prompt":"legacy"}"#)
            #expect(passthrough.status == 200)
            #expect(f.a.requests.map(\.path) == ["/v1/responses", "/custom/path"])
            #expect(f.a.requests.last?.method == "PUT")
            #expect(f.a.requests.last?.query == "x=1")
            let log = try await f.gw.finalAccessLog()
            #expect(log == "4 6 /v1/responses\n4 6 /custom/path?x=1\n")
        }
    }

    @Test func unsupportedProtocolIs400() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            try await f.route(#"{"instances":[\#(f.instance("d", f.a, provider: "deepseek"))]}"#, uri: "/v1/*")
            let result = try await f.gw.proxy(.POST, "/v1/embeddings", body: #"{"input":"hi"}"#)
            #expect(result.status == 400)
            #expect(
                result.body == "provider deepseek does not support openai-embeddings protocol (supported: openai-chat)"
            )
            #expect(f.a.requests.isEmpty)
        }
    }

    @Test func responseLimits() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            try await f.route(#"{"max_response_bytes":50,"instances":[\#(f.instance("a", f.a))]}"#)
            let whole = try await f.chat()
            #expect(whole.status == 502 && whole.body == "max_response_bytes exceeded")
            f.a.reply { _ in
                .sse(
                    events: FakeLLM.chatStream(model: "m", words: ["a", "b", "c", "d"], includeUsage: false),
                    gateAfter: 2)
            }
            try await f.route(#"{"max_stream_duration_ms":1,"instances":[\#(f.instance("a", f.a))]}"#)
            let request = Task { try await f.chat(streamBody) }
            // The gate holds the upstream until the 1 ms duration limit has surely passed (time
            // itself is what is tested here, so this wait has no event to replace it).
            try await Task.sleep(for: .milliseconds(50))
            f.a.openGate()
            let streamed = try await request.value
            let data = dataLines(streamed.body)
            #expect(!data.contains("[DONE]"))
            #expect(
                (try JSONParser.parse(try #require(data.last)))["error"]?["message"]
                    == "max_stream_duration_ms exceeded")
        }
    }

    @Test func toolCallsAreSeen() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(accessLog: .text("$llm_has_tool_calls $llm_tool_count")))
            let call: JSONValue = [
                "tool_calls": [["index": 0, "id": "c1", "function": ["name": "f", "arguments": "{}"]]]
            ]
            f.a.reply { _ in
                .sse(events: [
                    FakeLLM.chunk(model: "m", delta: ["role": "assistant"]), FakeLLM.chunk(model: "m", delta: call),
                    FakeLLM.chunk(model: "m", delta: [:], finish: "tool_calls"), "data: [DONE]\n\n",
                ])
            }
            try await f.route(#"{"instances":[\#(f.instance("a", f.a))]}"#)
            let body = #"{"stream":true,"tools":[{"type":"function","function":{"name":"f"}}],"messages":[]}"#
            let result = try await f.chat(body)
            #expect(result.body.contains("tool_calls"))
            let log = try await f.gw.finalAccessLog()
            #expect(log == "true 1\n")
        }
    }
}

@Suite struct AITLSTests {
    @Test func tlsUpstreamsAndSslVerify() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let tls = try await fx.own(FakeLLM.start(name: "tls", tls: true))
            let endpoint = "https://127.0.0.1:\(tls.port)"
            let instance =
                #"{"name":"t","provider":"openai","weight":1,"auth":{},"override":{"endpoint":"\#(endpoint)"}}"#
            try await f.route(#"{"ssl_verify":false,"instances":[\#(instance)]}"#)
            let unverified = try await f.chat()
            #expect(unverified.status == 200)
            #expect(tls.requests.count == 1)
            // The self-signed certificate is refused when verification is on (the default).
            try await f.route(#"{"instances":[\#(instance)]}"#)
            let verified = try await f.chat()
            #expect(verified.status == 502)
            #expect(verified.json["error"]?["code"] == "upstream_unreachable")
            #expect(tls.requests.count == 1)
        }
    }
}

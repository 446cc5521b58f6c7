import Testing

@testable import SwitchboardCore

@Suite struct AnthropicTranslationTests {
    private func json(_ text: String) throws -> JSONValue { try JSONParser.parse(text) }

    @Test func aMessagesRequestBecomesAChatRequest() throws {
        let messages = try json(
            """
            {"model":"claude-x","max_tokens":300,"system":[{"type":"text","text":"Be brief."}],
             "stop_sequences":["END"],"temperature":0.5,"top_k":5,"stream":true,"metadata":{"user_id":"u1"},
             "messages":[
              {"role":"user","content":[{"type":"text","text":"What is in"},{"type":"text","text":"this?"},
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},
              {"role":"assistant","content":[{"type":"text","text":"Let me add."},
                {"type":"tool_use","id":"toolu_1","name":"add","input":{"a":1}}]},
              {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"2"}]},
                {"type":"text","text":"Thanks"}]}],
             "tools":[{"name":"add","description":"Adds","input_schema":{"type":"object"}}],
             "tool_choice":{"type":"any","disable_parallel_tool_use":true}}
            """)
        let chat = AnthropicTranslation.chatRequest(fromMessages: messages)
        #expect(
            chat
                == (try json(
                    """
                    {"model":"claude-x","messages":[
                      {"role":"system","content":"Be brief."},
                      {"role":"user","content":[{"type":"text","text":"What is in"},{"type":"text","text":"this?"},
                        {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
                      {"role":"assistant","content":"Let me add.","tool_calls":[{"id":"toolu_1","type":"function",
                        "function":{"name":"add","arguments":"{\\"a\\":1}"}}]},
                      {"role":"tool","tool_call_id":"toolu_1","content":"2"},
                      {"role":"user","content":"Thanks"}],
                     "max_tokens":300,"temperature":0.5,"stream":true,"stop":["END"],"user":"u1",
                     "tools":[{"type":"function","function":{"name":"add","description":"Adds","parameters":{"type":"object"}}}],
                     "tool_choice":"required","parallel_tool_calls":false}
                    """)))
    }

    @Test func aChatRequestBecomesAMessagesRequestWithAlternatingTurns() throws {
        let chat = try json(
            """
            {"model":"claude-x","stream":true,"stream_options":{"include_usage":true},"n":1,"stop":"END",
             "messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":"Use tools."},
              {"role":"user","content":"Add 1 and 1."},{"role":"user","content":[{"type":"text","text":"Please."},
                {"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]},
              {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
                "function":{"name":"add","arguments":"{\\"a\\":1,\\"b\\":1}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"2"}],
             "tools":[{"type":"function","function":{"name":"add","parameters":{"type":"object"}}}],
             "tool_choice":{"type":"function","function":{"name":"add"}},"parallel_tool_calls":false}
            """)
        let messages = AnthropicTranslation.messagesRequest(fromChat: chat)
        #expect(
            messages
                == (try json(
                    """
                    {"model":"claude-x","system":"Be brief.\\n\\nUse tools.","messages":[
                      {"role":"user","content":[{"type":"text","text":"Add 1 and 1."},{"type":"text","text":"Please."},
                        {"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]},
                      {"role":"assistant","content":[{"type":"tool_use","id":"call_1","name":"add","input":{"a":1,"b":1}}]},
                      {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"2"}]}],
                     "max_tokens":4096,"stream":true,"stop_sequences":["END"],
                     "tools":[{"name":"add","input_schema":{"type":"object"}}],
                     "tool_choice":{"type":"tool","name":"add","disable_parallel_tool_use":true}}
                    """)))
        let hot = AnthropicTranslation.messagesRequest(
            fromChat: try json(#"{"temperature":1.7,"messages":[{"role":"user","content":"hi"}]}"#))
        #expect(hot["temperature"] == 1.0)  // Anthropic refuses more than 1
        let limited = AnthropicTranslation.messagesRequest(
            fromChat: try json(#"{"max_completion_tokens":50,"messages":[{"role":"user","content":"hi"}]}"#))
        #expect(limited["max_tokens"] == 50)
    }

    @Test func wholeAnswersTranslateBothWays() throws {
        let completion = try json(
            """
            {"id":"chatcmpl-9","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,
              "message":{"role":"assistant","content":"Adding.","tool_calls":[{"id":"call_1","type":"function",
              "function":{"name":"add","arguments":"{\\"a\\":1}"}}]},"finish_reason":"tool_calls"}],
             "usage":{"prompt_tokens":30,"completion_tokens":7,"total_tokens":37,"prompt_tokens_details":{"cached_tokens":10}}}
            """)
        let message = AnthropicTranslation.messagesAnswer(fromChat: completion)
        #expect(
            message
                == (try json(
                    """
                    {"id":"msg_chatcmpl-9","type":"message","role":"assistant","model":"gpt-4o","content":[
                      {"type":"text","text":"Adding."},{"type":"tool_use","id":"call_1","name":"add","input":{"a":1}}],
                     "stop_reason":"tool_use","stop_sequence":null,
                     "usage":{"input_tokens":20,"output_tokens":7,"cache_read_input_tokens":10}}
                    """)))
        let back = AnthropicTranslation.chatAnswer(
            fromMessages: try json(
                """
                {"id":"msg_1","type":"message","model":"claude-x","content":[{"type":"text","text":"Hi"}],
                 "stop_reason":"max_tokens","usage":{"input_tokens":20,"output_tokens":9,"cache_read_input_tokens":5,
                 "cache_creation_input_tokens":3}}
                """), created: 7)
        #expect(
            back
                == (try json(
                    """
                    {"id":"msg_1","object":"chat.completion","created":7,"model":"claude-x","choices":[{"index":0,
                      "message":{"role":"assistant","content":"Hi"},"finish_reason":"length"}],
                     "usage":{"prompt_tokens":28,"completion_tokens":9,"total_tokens":37,
                      "prompt_tokens_details":{"cached_tokens":5,"cache_creation_input_tokens":3}}}
                    """)))
    }

    @Test func errorsTakeAnthropicsShape() throws {
        let openAI = Array(#"{"error":{"message":"bad model","type":"invalid_request_error"}}"#.utf8)
        #expect(
            AnthropicTranslation.error(status: 404, body: openAI)
                == ["type": "error", "error": ["type": "not_found_error", "message": "bad model"]])
        #expect(
            AnthropicTranslation.error(status: 503, body: Array("all servers tried".utf8))
                == ["type": "error", "error": ["type": "overloaded_error", "message": "all servers tried"]])
        let native = Array(#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#.utf8)
        #expect(AnthropicTranslation.error(status: 529, body: native) == (try JSONParser.parse(native)))
    }

    /// Splits a translated stream into (event name, data) pairs.
    private func events(_ bytes: [UInt8]) throws -> [(String, JSONValue)] {
        var decoder = SSEDecoder()
        return try decoder.feed(bytes[...]).map {
            ($0.type, $0.data == "[DONE]" ? "[DONE]" : try JSONParser.parse($0.data))
        }
    }

    private func sse(_ data: String, type: String = "message") -> SSEEvent {
        SSEEvent(raw: Array("data: \(data)\n\n".utf8), type: type, data: data)
    }

    @Test func chatChunksBecomeAnthropicEvents() throws {
        var translator = ChatToMessagesStream()
        var out: [UInt8] = []
        let chunks = [
            #"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            #"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
            #"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}"#,
            #"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","function":{"name":"add","arguments":""}}]},"finish_reason":null}]}"#,
            #"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]},"finish_reason":null}]}"#,
            #"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            #"{"id":"c1","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#,
            "[DONE]",
        ]
        for chunk in chunks { out += translator.translate(sse(chunk)) }
        #expect(translator.finish().isEmpty)  // [DONE] already ended it
        let seen = try events(out)
        #expect(
            seen.map(\.0) == [
                "message_start", "content_block_start", "content_block_delta", "content_block_delta",
                "content_block_stop", "content_block_start", "content_block_delta", "content_block_stop",
                "message_delta", "message_stop",
            ])
        #expect(seen[0].1["message"]?["id"] == "msg_c1")
        #expect(seen[3].1["delta"] == ["type": "text_delta", "text": "lo"])
        #expect(seen[5].1["content_block"] == ["type": "tool_use", "id": "call_1", "name": "add", "input": [:]])
        #expect(seen[6].1["index"] == 1)
        #expect(seen[6].1["delta"] == ["type": "input_json_delta", "partial_json": #"{"a":1}"#])
        #expect(seen[8].1["delta"]?["stop_reason"] == "tool_use")
        #expect(seen[8].1["usage"] == ["input_tokens": 12, "output_tokens": 5])
    }

    @Test func anthropicEventsBecomeChatChunks() throws {
        var translator = MessagesToChatStream(includeUsage: true, created: 9)
        var out: [UInt8] = []
        let events = [
            #"{"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":20,"output_tokens":1,"cache_read_input_tokens":5}}}"#,
            #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            #"{"type":"ping"}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
            #"{"type":"content_block_stop","index":0}"#,
            #"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"add","input":{}}}"#,
            #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
            #"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#,
            #"{"type":"message_stop"}"#,
        ]
        for event in events { out += translator.translate(sse(event)) }
        #expect(translator.finish().isEmpty)
        let seen = try self.events(out).map(\.1)
        #expect(seen.count == 7)
        #expect(seen[0]["choices"]?[0]?["delta"] == ["role": "assistant", "content": ""])
        #expect(seen[0]["id"] == "msg_1")
        #expect(seen[1]["choices"]?[0]?["delta"] == ["content": "Hi"])
        #expect(
            seen[2]["choices"]?[0]?["delta"]
                == [
                    "tool_calls": [
                        [
                            "index": 0, "id": "toolu_1", "type": "function",
                            "function": ["name": "add", "arguments": ""],
                        ]
                    ]
                ])
        #expect(
            seen[3]["choices"]?[0]?["delta"] == ["tool_calls": [["index": 0, "function": ["arguments": #"{"a":"#]]]])
        #expect(seen[4]["choices"]?[0]?["finish_reason"] == "tool_calls")
        #expect(
            seen[5]["usage"] == [
                "prompt_tokens": 25, "completion_tokens": 9, "total_tokens": 34,
                "prompt_tokens_details": ["cached_tokens": 5, "cache_creation_input_tokens": 0],
            ])
        #expect(seen[6] == "[DONE]")
    }

    @Test func aResumedAnthropicStreamIsRenumberedFromTheClientsTextBlock() throws {
        var resume = AnthropicResume(textBlock: 2)
        let text = sse(#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"on"}}"#)
        let tool = sse(#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t"}}"#)
        let stop = sse(#"{"type":"message_stop"}"#)
        let out = try events(resume.translate(text) + resume.translate(tool) + resume.translate(stop)).map(\.1)
        #expect(out.map { $0["index"] } == [2, 3, nil])  // shifted together, never onto one block
        var same = AnthropicResume(textBlock: 0)
        #expect(same.translate(text) == text.raw)
    }

    @Test func aProvidersBlockIndexIsBoundedBeforeAContinuationUsesIt() {
        var inspector = StreamInspector(proto: .anthropicMessages)
        _ = inspector.inspect(
            sse(#"{"type":"content_block_delta","index":9223372036854775807,"delta":{"type":"text_delta","text":"x"}}"#)
        )
        #expect(inspector.textBlock == nil)
        _ = inspector.inspect(
            sse(#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"x"}}"#))
        #expect(inspector.textBlock == 1)
    }

    @Test func targetsFollowTheProviderAndTheEndpoint() throws {
        func instance(_ provider: String, endpoint: String? = nil) throws -> AIInstance {
            let override = endpoint.map { #","override":{"endpoint":"\#($0)"}"# } ?? ""
            return AIInstance(
                json: try json(#"{"name":"x","provider":"\#(provider)","weight":1,"auth":{}\#(override)}"#))
        }
        #expect(try instance("anthropic").target(for: .openaiChat) == .anthropicMessages)
        #expect(try instance("anthropic", endpoint: "http://h:1").target(for: .openaiChat) == .anthropicMessages)
        #expect(
            try instance("anthropic", endpoint: "http://h:1/v1/chat/completions").target(for: .openaiChat)
                == .openaiChat)
        #expect(try instance("anthropic").target(for: .anthropicMessages) == .anthropicMessages)
        #expect(try instance("openai").target(for: .anthropicMessages) == .openaiChat)
        #expect(try instance("deepseek").target(for: .anthropicMessages) == .openaiChat)
        #expect(try instance("openai").target(for: .openaiChat) == .openaiChat)
        #expect(try instance("deepseek").target(for: .openaiEmbeddings) == nil)
    }
}

import Testing

@testable import SwitchboardCore

@Suite struct BedrockTranslationTests {
    @Test func eventStreamMessagesRoundTripAcrossReadsAndChecksumsAreChecked() throws {
        let one = EventStreamDecoder.encode(
            headers: [(":event-type", "contentBlockDelta"), (":message-type", "event")],
            payload: Array(#"{"delta":{"text":"Hi"}}"#.utf8))
        let two = EventStreamDecoder.encode(
            headers: [(":message-type", "exception"), (":exception-type", "throttlingException")],
            payload: Array(#"{"message":"slow down"}"#.utf8))
        var decoder = EventStreamDecoder()
        let stream = one + two
        var events: [SSEEvent] = []
        for start in stride(from: 0, to: stream.count, by: 7) {
            events += try decoder.feed(stream[start..<min(start + 7, stream.count)])
        }
        #expect(events.map(\.type) == ["contentBlockDelta", "error"])
        #expect(events[0].data == #"{"delta":{"text":"Hi"}}"#)
        #expect(events[0].raw == one)
        #expect(events[1].data == #"throttlingException: {"message":"slow down"}"#)

        var damaged = one
        damaged[damaged.count - 6] ^= 1
        var fresh = EventStreamDecoder()
        #expect(throws: EventStreamDecoder.Malformed.self) { try fresh.feed(damaged) }
        var huge = EventStreamDecoder()
        let oversized = EventStreamDecoder.bigEndian(UInt32(1 << 30)) + EventStreamDecoder.bigEndian(0)
        #expect(throws: EventStreamDecoder.Malformed.self) {
            try huge.feed(oversized + EventStreamDecoder.bigEndian(CRC32.checksum(oversized)))
        }
    }

    @Test func chatRequestsBecomeConverseAndAnswersComeBack() throws {
        let chat = try JSONParser.parse(
            """
            {"model":"m","max_tokens":20,"top_p":0.9,"stop":"END","messages":[{"role":"system","content":"Be brief."},
              {"role":"user","content":"Add."},{"role":"assistant","content":null,"tool_calls":[{"id":"t1","type":"function",
              "function":{"name":"add","arguments":"{\\"a\\":1}"}}]},{"role":"tool","tool_call_id":"t1","content":"2"}],
             "tools":[{"type":"function","function":{"name":"add","parameters":{"type":"object"}}}],"tool_choice":"required"}
            """)
        #expect(
            BedrockTranslation.converseRequest(fromChat: chat)
                == (try JSONParser.parse(
                    """
                    {"messages":[{"role":"user","content":[{"text":"Add."}]},
                      {"role":"assistant","content":[{"toolUse":{"toolUseId":"t1","name":"add","input":{"a":1}}}]},
                      {"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"text":"2"}]}}]}],
                     "system":[{"text":"Be brief."}],"inferenceConfig":{"maxTokens":20,"topP":0.9,"stopSequences":["END"]},
                     "toolConfig":{"tools":[{"toolSpec":{"name":"add","inputSchema":{"json":{"type":"object"}}}}],
                       "toolChoice":{"any":{}}}}
                    """)))
        var declined = chat
        declined["tool_choice"] = "none"
        #expect(BedrockTranslation.converseRequest(fromChat: declined)["toolConfig"] == nil)
        let answer = try JSONParser.parse(
            #"{"output":{"message":{"role":"assistant","content":[{"toolUse":{"toolUseId":"t2","name":"add","input":{"b":2}}}]}},"stopReason":"tool_use","usage":{"inputTokens":5,"outputTokens":3,"totalTokens":8}}"#
        )
        let completion = BedrockTranslation.chatAnswer(fromConverse: answer, model: "m", created: 1)
        #expect(completion["choices"]?[0]?["finish_reason"] == "tool_calls")
        #expect(
            completion["choices"]?[0]?["message"]?["tool_calls"]
                == [["id": "t2", "type": "function", "function": ["name": "add", "arguments": #"{"b":2}"#]]])
        #expect(completion["usage"] == ["prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8])
    }
}

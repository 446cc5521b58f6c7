import Testing

@testable import SwitchboardCore

/// The in-place reading of chat chunks (``JSONCursor``) against the JSON tree it replaced: for
/// every chunk, the same verdict and the same state (usage, model, text, tool calls, finish).
@Suite struct StreamInspectorTests {
    static let chunks = decided + leftToTheParser

    /// Read in place.
    static let decided: [String] = [
        // What providers send.
        #"{"id":"c","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        #"{"id":"c","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"word1 "},"finish_reason":null}]}"#,
        #"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        #"{"id":"c","choices":[],"usage":{"prompt_tokens":42,"completion_tokens":18,"total_tokens":60}}"#,
        #"{"choices":[{"delta":{"content":"x"}}],"usage":{"prompt_tokens":1,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":1}}}"#,
        #"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"t","function":{"name":"f","arguments":""}}]}}]}"#,
        #"{"choices":[{"delta":{"tool_calls":[]}}]}"#,
        #"{"choices":[{"delta":{"refusal":"no"}}]}"#,
        #"{"choices":[{"delta":{"refusal":null,"content":null}}]}"#,
        #"{"choices":[{"delta":{"content":"a\"b\\c\n\u00e9\/"}}]}"#,
        #"{}"#,
        #"{"choices":[{"delta":{"content":"one"}},{"delta":{"content":"two"}}]}"#,
        #"  {"model" : "m2" , "choices" : [ { "delta" : { "content" : "sp" } } ] }  "#,
        #"{"model":42,"choices":[{"delta":{"content":"n"}}]}"#,
        #"{"model":"esc\u0061ped","choices":[]}"#,
        #"{"choices":{"delta":{"content":"not an array"}}}"#,
        #"{"choices":[1,"two",null,[3]]}"#,
        #"{"choices":[{"delta":"not an object","finish_reason":"length"}]}"#,
        #"{"usage":[1,2],"choices":[]}"#,
        #"{"usage":null}"#,
        #"{"x":{"y":[true,false,null,-0.5,12,0]},"choices":[{"delta":{"content":"z"}}]}"#,
        #"{"n":[1e3,-2.5E-7,3e+2,1e-400],"choices":[{"delta":{"content":"exp"}}]}"#,
    ]

    static let leftToTheParser: [String] = [
        #"{"error":{"message":"overloaded","type":"server_error"}}"#,
        #"{"choices":[{"delta":{"content":"pair \ud83d\ude00"}}]}"#,
        #"{"error":null,"choices":[{"delta":{"content":"e"}}]}"#,
        #"{"message":{"model":"from-message"},"choices":[]}"#,
        #"{"choices":[{"delta":{"content":"a","content":""}}]}"#,
        #"{"choices":[],"choices":[{"delta":{"content":"dup"}}]}"#,
        #"{"n":1e999,"choices":[]}"#,
        #"{"k\u0065y":1,"choices":[]}"#,
        // Not JSON.
        #"{"choices":[{"delta":{"content":"cut"#,
        #"{"choices":[]} trailing"#,
        #"{"choices":[01]}"#,
        #"{"choices":[-]}"#,
        #"{"choices":[1.]}"#,
        #"{"a":"bad \x escape"}"#,
        "{\"a\":\"control \u{01} char\"}",
        #"{"a":"\ud800 lone"}"#,
        #"{"a":tru}"#,
        #"{"a" 1}"#,
        #"{"a":1,}"#,
        #"[1,2]"#,
        #""just a string""#,
        String(repeating: "[", count: 100) + String(repeating: "]", count: 100),
        #"{"a":"#,
    ]

    func state(_ inspector: StreamInspector) -> String {
        let u = inspector.usage
        return
            "\(u.prompt)/\(u.completion)/\(u.total)/\(u.cacheRead) \(u.raw.serialized()) \(inspector.model ?? "-") "
            + "\(inspector.text) \(inspector.hasToolCalls) \(inspector.sawFinishReason)"
    }

    /// The chunks providers send are read in place; the rest goes to the parser untouched.
    @Test func whatIsReadInPlace() {
        for (chunks, decided) in [(Self.decided, true), (Self.leftToTheParser, false)] {
            for chunk in chunks {
                var inspector = StreamInspector(proto: .openaiChat, keepText: true)
                let verdict = chunk.utf8.withContiguousStorageIfAvailable { inspector.inspectChatInPlace($0) } ?? nil
                #expect((verdict != nil) == decided, "\(chunk)")
                if !decided { #expect(state(inspector) == state(StreamInspector(proto: .openaiChat)), "\(chunk)") }
            }
        }
    }

    @Test(arguments: [false, true])
    func eachChunkReadsAsTheTreeReadsIt(keepText: Bool) {
        for chunk in Self.chunks {
            let event = SSEEvent(raw: Array("data: \(chunk)\n\n".utf8), type: "message", data: chunk)
            var tree = StreamInspector(proto: .openaiChat, keepText: keepText)
            var inPlace = StreamInspector(proto: .openaiChat, keepText: keepText)
            #expect(inPlace.inspect(event, inPlace: true) == tree.inspect(event, inPlace: false), "\(chunk)")
            #expect(state(inPlace) == state(tree), "\(chunk)")
        }
    }

    /// Chunks damaged at random (a byte dropped, doubled or replaced by a JSON delimiter): the
    /// in-place reading never accepts what the tree refuses, nor reads it differently.
    @Test func damagedChunksReadAsTheTreeReadsThem() {
        for chunk in damagedCopies(of: Self.decided, count: 3000) {
            let event = SSEEvent(raw: [], type: "message", data: chunk)
            var tree = StreamInspector(proto: .openaiChat, keepText: true)
            var inPlace = StreamInspector(proto: .openaiChat, keepText: true)
            #expect(inPlace.inspect(event, inPlace: true) == tree.inspect(event, inPlace: false), "\(chunk)")
            #expect(state(inPlace) == state(tree), "\(chunk)")
        }
    }

    /// A whole stream, state carried from chunk to chunk (the model is the first one reported).
    @Test func aStreamReadsAsTheTreeReadsIt() {
        var tree = StreamInspector(proto: .openaiChat, keepText: true)
        var inPlace = StreamInspector(proto: .openaiChat, keepText: true)
        for chunk in Self.chunks {
            let event = SSEEvent(raw: [], type: "message", data: chunk)
            #expect(inPlace.inspect(event, inPlace: true) == tree.inspect(event, inPlace: false), "\(chunk)")
        }
        #expect(state(inPlace) == state(tree))
        #expect(inPlace.model == "gpt-4o-mini")
    }
}

import Testing

@testable import SwitchboardCore

/// A whole answer read in place (``JSONCursor``) against the same answer's JSON tree: the same
/// usage, model, tool calls and text, whichever way it was read.
@Suite struct ResponseSummaryTests {
    static let decided: [String] = [
        #"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox."},"finish_reason":"stop"}],"usage":{"prompt_tokens":42,"completion_tokens":12,"total_tokens":54}}"#,
        #"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023,-0.0093,1.5e-05,-2E+3]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}"#,
        #"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}"#,
        #"{"choices":[{"message":{"content":"a","tool_calls":[]}},{"message":{"content":"b \"q\" \u00e9"}}]}"#,
        #"{"choices":[{"message":"text"},3,null,{"message":{"content":7}}],"model":null}"#,
        #"{"choices":{"message":{"content":"not an array"}},"usage":[1]}"#,
        #"{"model":"esc\u0061ped","usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":1}}"#,
        #"{}"#,
    ]

    static let leftToTheParser: [String] = [
        #"{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}"#,
        #"{"choices":[{"message":{"content":"a","content":"b"}}]}"#,
        #"{"k\u0065y":1}"#,
        #"{"choices":[{"message":{"content":"pair \ud83d\ude00"}}]}"#,
        #"[{"usage":{"prompt_tokens":1}}]"#,
        #"{"n":1e999}"#,
        #"{"choices":[],"#,
        #"not json"#,
    ]

    func read(_ text: String, keepText: Bool, inPlace: Bool) -> ResponseSummary? {
        Array(text.utf8).withUnsafeBufferPointer { bytes in
            if inPlace { return ResponseSummary.inPlace(bytes, keepText: keepText) }
            return (try? JSONParser.parse(bytes)).map { ResponseSummary($0, keepText: keepText) }
        }
    }

    @Test func whatIsReadInPlace() {
        for (answers, decided) in [(Self.decided, true), (Self.leftToTheParser, false)] {
            for answer in answers {
                #expect((read(answer, keepText: true, inPlace: true) != nil) == decided, "\(answer)")
            }
        }
    }

    @Test(arguments: [false, true])
    func eachAnswerReadsAsTheTreeReadsIt(keepText: Bool) {
        for answer in Self.decided + Self.leftToTheParser + damagedCopies(of: Self.decided, count: 3000) {
            let tree = read(answer, keepText: keepText, inPlace: false)
            if let inPlace = read(answer, keepText: keepText, inPlace: true) {
                #expect(inPlace == tree, "\(answer)")
            }
            let summary = Array(answer.utf8).withUnsafeBufferPointer { ResponseSummary.read($0, keepText: keepText) }
            #expect(summary == tree, "\(answer)")
        }
    }

    @Test func theBenchmarksAnswer() throws {
        let summary = try #require(read(Self.decided[0], keepText: true, inPlace: true))
        #expect(summary.usage?.prompt == 42 && summary.usage?.completion == 12 && summary.usage?.total == 54)
        #expect(summary.model == "gpt-4o-mini")
        #expect(summary.texts == ["The quick brown fox."])
        #expect(!summary.hasToolCalls)
    }
}

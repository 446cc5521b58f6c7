import Testing

@testable import SwitchboardCore

@Suite struct MergePatchTests {
    /// The examples of RFC 7396, appendix A.
    @Test(arguments: [
        (#"{"a":"b"}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"b"}"#, #"{"b":"c"}"#, #"{"a":"b","b":"c"}"#),
        (#"{"a":"b"}"#, #"{"a":null}"#, #"{}"#),
        (#"{"a":"b","b":"c"}"#, #"{"a":null}"#, #"{"b":"c"}"#),
        (#"{"a":["b"]}"#, #"{"a":"c"}"#, #"{"a":"c"}"#),
        (#"{"a":"c"}"#, #"{"a":["b"]}"#, #"{"a":["b"]}"#),
        (#"{"a":{"b":"c"}}"#, #"{"a":{"b":"d","c":null}}"#, #"{"a":{"b":"d"}}"#),
        (#"{"a":[{"b":"c"}]}"#, #"{"a":[1]}"#, #"{"a":[1]}"#),
        (#"["a","b"]"#, #"["c","d"]"#, #"["c","d"]"#),
        (#"{"a":"b"}"#, #"["c"]"#, #"["c"]"#),
        (#"{"a":"foo"}"#, "null", "null"),
        (#"{"a":"foo"}"#, #""bar""#, #""bar""#),
        (#"{"e":null}"#, #"{"a":1}"#, #"{"e":null,"a":1}"#),
        (#"[1,2]"#, #"{"a":"b","c":null}"#, #"{"a":"b"}"#),
        (#"{}"#, #"{"a":{"bb":{"ccc":null}}}"#, #"{"a":{"bb":{}}}"#),
    ])
    func rfc7396(target: String, patch: String, expected: String) throws {
        let result = try JSONParser.parse(target).merging(patch: try JSONParser.parse(patch))
        #expect(result == (try JSONParser.parse(expected)))
    }

    @Test func replacesASubtreeByPath() throws {
        let route = try JSONParser.parse(#"{"uri":"/a","plugins":{"x":{"k":1},"y":{}}}"#)
        let replaced = route.replacing(path: ["plugins"], with: ["z": [:]])
        #expect(replaced == (try JSONParser.parse(#"{"uri":"/a","plugins":{"z":{}}}"#)))
        let deep = route.replacing(path: ["plugins", "x", "k"], with: 2)
        #expect(deep?["plugins"]?["x"]?["k"] == 2)
        #expect(route.replacing(path: ["uri", "x"], with: 1) == nil)
    }
}

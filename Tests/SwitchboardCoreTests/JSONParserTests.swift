import Testing

@testable import SwitchboardCore

@Suite struct JSONParserTests {
    @Test func parsesAllTypesAndKeepsMemberOrder() throws {
        let value = try JSONParser.parse(#"{"z":1,"a":[true,false,null],"m":-2.5e1,"s":"x\"y\u00e9\ud83d\ude00"}"#)
        #expect(value.objectValue.map { Array($0.keys) } == ["z", "a", "m", "s"])
        #expect(value["z"] == .int(1))
        #expect(value["a"] == [true, false, nil])
        #expect(value["m"] == .double(-25))
        #expect(value["s"] == .string("x\"yé😀"))
    }

    @Test func roundTripsThroughSerialization() throws {
        let text = #"{"id":"00000000000000000001","n":12345678901234,"f":0.5,"e":"a\nb\u0001","l":[],"o":{}}"#
        let value = try JSONParser.parse(text)
        #expect(value.serialized() == text)
        #expect(try JSONParser.parse(value.serialized()) == value)
    }

    @Test(arguments: [
        ("{\"a\" 1}", "unexpected '1', expected ':' after object key \"a\" at line 1, column 6"),
        (
            "{\n\"fallback_strategy: \"x\",\n}",
            "unexpected 'x', expected ':' after object key \"fallback_strategy: \" at line 2, column 22"
        ),
        ("[1,2", "unexpected end of input, expected ',' or ']' in array at line 1, column 5"),
        ("{\"a\":1}x", "unexpected 'x' after the JSON value at line 1, column 8"),
        ("", "unexpected end of input, expected a value at line 1, column 1"),
        ("{'a':1}", "unexpected ''', expected a string as object key at line 1, column 2"),
        ("01", "unexpected '1' after the JSON value at line 1, column 2"),
        ("\"abc", "unterminated string at line 1, column 1"),
        ("tru", "unexpected end of input, expected 'true' at line 1, column 4"),
    ])
    func reportsWhereAndWhy(input: String, message: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(input) }
        do {
            _ = try JSONParser.parse(input)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func refusesDeepNesting() {
        let deep = String(repeating: "[", count: 300) + String(repeating: "]", count: 300)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect((try? JSONParser.parse(fine)) != nil)
    }

    @Test func integersAndDoublesCompareByValue() {
        #expect(JSONValue.int(1) == .double(1.0))
        #expect(JSONValue.int(1) != .string("1"))
        #expect(JSONValue.object(["a": 1, "b": 2]) == .object(["b": 2, "a": 1]))
    }
}

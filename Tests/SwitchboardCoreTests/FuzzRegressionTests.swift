import Testing

@testable import SwitchboardCore

/// Inputs that broke a parser under the fuzz targets of Fuzz/ (scripts/fuzz.sh), each held to a
/// clean answer: an error, a refusal or a result, never a trap, a hang or a stack overflow.
@Suite struct FuzzRegressionTests {
    func cursorAccepts(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buffer in
            var cursor = JSONCursor(buffer)
            return cursor.skipValue() && cursor.atEnd()
        }
    }

    /// FuzzJSON: ``JSONCursor`` accepted strings that are not UTF-8, which ``JSONParser``
    /// refuses, so the in-place readers took for JSON what the parser does not.
    @Test func theCursorRefusesStringsThatAreNotUTF8() {
        let broken: [[UInt8]] = [
            // The fuzzer's input: `"` E0 `~0ntww` F7 `wnt"`.
            [0x22, 0xE0, 0x7E, 0x30, 0x6E, 0x74, 0x77, 0x77, 0xF7, 0x77, 0x6E, 0x74, 0x22],
            // A character cut by an escape, an encoded surrogate, an overlong slash, a lone
            // continuation byte inside an array.
            Array(#""a\n"#.utf8) + [0xC3] + Array(#"\n""#.utf8),
            [0x22, 0xED, 0xA0, 0x80, 0x22],
            [0x22, 0xC0, 0xAF, 0x22],
            Array(#"["ok",""#.utf8) + [0x80] + Array(#""]"#.utf8),
        ]
        for bytes in broken {
            #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
            #expect(!cursorAccepts(bytes), "\(bytes)")
        }
        for text in [#""café \u00e9 😀""#, #"{"k":"日本語","e":"\n\u00e9"}"#] {
            #expect(cursorAccepts(Array(text.utf8)))
            #expect((try? JSONParser.parse(text)) != nil)
        }
    }

    /// FuzzResponseSummary: a provider answer with a byte that is not UTF-8 in a string the
    /// reader skips was summarised (usage counted) though it is not JSON.
    @Test func anAnswerThatIsNotJSONIsNotSummarised() {
        let bodies: [[UInt8]] = [
            Array(
                #"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_excee"#
                    .utf8) + [0xA5] + Array(#"d"}}"#.utf8),
            Array(#"{"id":""#.utf8) + [0xFF] + Array(#"","usage":{"prompt_tokens":5,"completion_tokens":7}}"#.utf8),
        ]
        for body in bodies {
            for keepText in [false, true] {
                let summary = body.withUnsafeBufferPointer { ResponseSummary.read($0, keepText: keepText) }
                #expect(summary == nil)
            }
        }
    }

    /// FuzzVars: `ipmatch` with an empty address ended the process (an index out of range in
    /// ``CIDR``, which also reads a route's `remote_addrs` on the Admin API).
    @Test func anEmptyAddressIsRefusedNotATrap() throws {
        let rule = try JSONParser.parse(#"["d2","!","ipmatch",["","ipmatch",["181.0.0.0/8","::10.0.0.0/8","::"]]]"#)
        #expect(throws: Expr.CompileError.self) { try Expr.compile(rule) }
        let empty = try JSONParser.parse(#"[["remote_addr","ipmatch",""]]"#)
        #expect(throws: Expr.CompileError.self) { try Expr.compile(empty) }
        for text in ["", "/", "//", "10.0.0.0/", "/8", "10.0.0.1\u{0}junk"] {
            #expect(CIDR(text) == nil, "\(text)")
        }
        #expect(IPAddress("10.0.0.1\u{0}junk") == nil)
        #expect(CIDR("10.0.0.0/8")?.prefixLength == 104)
        #expect(CIDR("::1")?.prefixLength == 128)
        let list = try JSONParser.parse(#"[["remote_addr","ipmatch",["10.0.0.0/8","::1"]]]"#)
        #expect(try Expr.compile(list).evaluate(FakeVariables()))
    }

    /// FuzzCostExpr (its binary on a hand-made input; the fuzzer's 2 KiB inputs cannot nest deep
    /// enough): `cost_expr` recursed once per `(` or `-` and once per operator when evaluating,
    /// so a long one ran the stack out. Nesting and length are bounded now.
    @Test func aCostExpressionCannotRunTheStackOut() throws {
        let deep = CostExpression.maximumDepth
        let hostile = [
            String(repeating: "(", count: 100_000) + "1" + String(repeating: ")", count: 100_000),
            String(repeating: "-", count: 100_000) + "1",
            String(repeating: "max(", count: 50_000) + "1",
            "1" + String(repeating: "+1", count: 100_000),
            String(repeating: "(", count: deep) + "1" + String(repeating: ")", count: deep),
        ]
        for text in hostile {
            #expect(throws: CostExpression.ParseError.self) { try CostExpression(text) }
        }
        let nested = String(repeating: "(", count: deep - 1) + "prompt_tokens" + String(repeating: ")", count: deep - 1)
        #expect(try CostExpression(nested).cost(["prompt_tokens": 7]) == 7)
        let long = "1" + String(repeating: "+1", count: (CostExpression.maximumTokens - 1) / 2)
        #expect(try CostExpression(long).cost(.null) == (CostExpression.maximumTokens + 1) / 2)
    }

    /// FuzzConfig (its binary on a hand-made input, which timed out): aliases of aliases
    /// ("billion laughs") made 430 bytes of YAML into 10^9 values.
    @Test func yamlAliasesCannotMultiplyWithoutBound() throws {
        var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        for i in 1...8 {
            lines.append("a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]")
        }
        let laughs = lines.joined(separator: "\n")
        #expect(throws: GatewayConfig.Error.self) { try YAMLDocument.parse(laughs, environment: [:]) }
        #expect(throws: GatewayConfig.Error.self) { try GatewayConfig.parse(laughs) }
        // Aliases within reason still read as their anchors.
        let document = try YAMLDocument.parse("a: &a [1, {b: 2}]\nc: [*a, *a]", environment: [:])
        #expect(document?["c"] == [[1, ["b": 2]], [1, ["b": 2]]])
    }
}

import Testing

@testable import SwitchboardCore

@Suite struct SSEDecoderTests {
    func events(_ chunks: [String]) throws -> [SSEEvent] {
        var decoder = SSEDecoder()
        var out: [SSEEvent] = []
        for chunk in chunks { out += try decoder.feed(Array(chunk.utf8)) }
        return out
    }

    @Test func fieldsCommentsAndLineEndings() throws {
        let parsed = try events([
            ": keep-alive\n\n", "event: error\ndata: {\"a\":1}\n\n", "data:no-space\r\n\r\n",
            "data: line one\ndata: line two\nid: 7\nretry: 10\n\n", "data:  two spaces\n\n",
        ])
        #expect(parsed.map(\.type) == ["message", "error", "message", "message", "message"])
        #expect(parsed.map(\.data) == ["", #"{"a":1}"#, "no-space", "line one\nline two", " two spaces"])
        #expect(parsed[2].raw == Array("data:no-space\r\n\r\n".utf8))
    }

    @Test func anEmptyEventFieldKeepsTheDefaultType() throws {
        #expect(try events(["event:\ndata: x\n\n"]).map(\.type) == ["message"])
    }

    @Test func anEventSplitAcrossReadsWaitsForItsEnd() throws {
        let parsed = try events(["da", "ta: [DO", "NE]\n", "\ndata: x\n\nda"])
        #expect(parsed.map(\.data) == ["[DONE]", "x"])
    }

    @Test func anEndlessEventIsAnError() {
        var decoder = SSEDecoder()
        let big = [UInt8](repeating: UInt8(ascii: "a"), count: SSEDecoder.maxPending + 1)
        #expect(throws: SSEDecoder.Overflow.self) { try decoder.feed(big) }
    }
}

import Foundation
import SwitchboardCore
import Testing

/// The official `openai` Python package against the gateway (installed by scripts/test.sh).
@Suite struct OpenAIClientTests {
    @Test func theOfficialClientJustWorks() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            try await f.route(#"{"instances":[\#(f.instance("a", f.a))]}"#, uri: "/v1/*")
            let cut = Array(FakeLLM.chatStream(model: "gpt-4o", words: ["Hel", "lo"], includeUsage: false).prefix(3))
            f.b.reply { _ in .sse(events: cut, end: .cut) }
            try await f.route(#"{"instances":[\#(f.instance("b", f.b))]}"#, uri: "/broken/v1/*", id: "broken")

            let script = Spawned.clientScript("openai_client.py")
            let result = try await Spawned.finish(
                "python3", [script, f.gw.proxyBase + "/v1", f.gw.proxyBase + "/broken/v1"])
            #expect(result.status == 0, "\(result.stderr)")
            let output = Array(result.stdout.utf8)
            let seen = try JSONParser.parse(output)
            #expect(seen["chat"] == ["model": "gpt-4o", "content": "1+1 equals 2.", "total_tokens": 31])
            #expect(seen["stream"] == ["text": "1+1 equals 2.", "usage": nil])
            #expect(seen["stream_with_usage"] == 31)
            #expect(seen["embedding_length"] == 2)
            // Whether the cut reaches the gateway before or after it relayed content (the in-band
            // error event, or a 502 when nothing was sent yet), the SDK raises instead of
            // completing silently. The in-band case is tested deterministically in AIStreamingTests.
            #expect(seen["broken"]?.stringValue?.hasPrefix("APIError:") == true, "\(seen)")
            #expect(
                f.a.requests.map(\.path) == [
                    "/v1/chat/completions", "/v1/chat/completions", "/v1/chat/completions", "/v1/embeddings",
                ])
        }
    }
}

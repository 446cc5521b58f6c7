import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SwitchboardCore
import Testing

let streamBody =
    #"{"model":"m","stream":true,"stream_options":{"include_obfuscation":false},"messages":[{"role":"user","content":"hi"}]}"#

/// `data:` payloads of an SSE text, in order.
func dataLines(_ text: String) -> [String] {
    text.components(separatedBy: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
}

@Suite struct AIStreamingTests {
    func streamRoute(_ f: AIFixture, strategy: String = "", extra: String = "", second: Bool = false) async throws {
        let a = f.instance("a", f.a, model: "model-a", extra: #","priority":1"#)
        let b = f.instance("b", f.b, model: "model-b")
        try await f.route(#"{\#(strategy)\#(extra)"instances":[\#(a)\#(second ? "," + b : "")]}"#)
    }

    @Test func chunksArriveWhileTheUpstreamIsStillSending() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(
                    accessLog: .text("$request_type $llm_prompt_tokens $llm_completion_tokens $llm_total_tokens")))
            f.a.reply { _ in
                .sse(
                    events: FakeLLM.chatStream(model: "model-a", words: ["1+1", " is", " 2"], includeUsage: true),
                    gateAfter: 2)
            }
            try await streamRoute(f)
            var request = HTTPClientRequest(url: f.gw.proxyBase + "/anything")
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: streamBody))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(response.status == .ok)
            #expect(response.headers.first(name: "content-type") == "text/event-stream")
            #expect(response.headers.first(name: "connection") != "close")
            var received = ""
            var iterator = response.body.makeAsyncIterator()
            // The first content arrives while the upstream waits for the gate.
            while !received.contains("1+1"), let chunk = try await iterator.next() {
                received += String(buffer: chunk)
            }
            #expect(received.contains("\"role\":\"assistant\""))
            #expect(!received.contains(" is"))
            f.a.openGate()
            while let chunk = try await iterator.next() { received += String(buffer: chunk) }
            let data = dataLines(received)
            #expect(data.last == "[DONE]")
            // role, 3 words, finish, [DONE]: the usage chunk the client did not ask for is gone
            #expect(data.count == 6)
            #expect(!received.contains("\"usage\""))
            // The upstream was asked for usage, merged into the client's stream_options.
            #expect(
                f.a.requests.first?.body["stream_options"] == ["include_obfuscation": false, "include_usage": true])
            let log = try await f.gw.finalAccessLog()
            #expect(log == "ai_stream 23 8 31\n")
        }
    }

    @Test func aClientThatAskedForUsageGetsIt() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            try await streamRoute(f)
            let body =
                #"{"model":"model-a","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#
            let result = try await f.chat(body)
            let data = dataLines(result.body)
            #expect(data.count == 7)
            #expect((try JSONParser.parse(data[5]))["usage"]?["total_tokens"] == 31)
            #expect(f.a.requests.first?.rawBody == body)
        }
    }

    @Test func streamedAndUnstreamedCallsCountTheSameTokens() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(accessLog: .text("$llm_stream $llm_prompt_tokens $llm_completion_tokens")))
            try await streamRoute(f)
            _ = try await f.chat(streamBody)
            _ = try await f.chat()
            let log = try await f.gw.finalAccessLog()
            #expect(log == "true 23 8\nfalse 23 8\n")
        }
    }

    @Test(arguments: ["error-event", "error-json", "reset", "silence", "status"])
    func failsOverUntilContentFlows(fault: String) async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let role = FakeLLM.chunk(model: "model-a", delta: ["role": "assistant", "content": ""])
            f.a.reply { _ in
                switch fault {
                case "error-event": return .sse(events: [role, "event: error\ndata: {\"message\":\"overloaded\"}\n\n"])
                case "error-json": return .sse(events: [role, "data: {\"error\":{\"message\":\"overloaded\"}}\n\n"])
                case "reset": return .sse(events: [role], end: .cut)
                case "silence": return .sse(events: [role], end: .hang)
                default: return .json(status: 503, body: "busy")
                }
            }
            // The first token must come within 3 s (the silent variant); the working instance's
            // stream may pause longer on a loaded machine without being cut (idle timeout 10 s).
            try await streamRoute(
                f, strategy: #""fallback_strategy":"http_5xx","#,
                extra: #""timeout":10000,"first_token_timeout_ms":3000,"#, second: true)
            let result = try await f.chat(streamBody)
            #expect(result.status == 200)
            let data = dataLines(result.body)
            #expect(data.last == "[DONE]")
            #expect(result.body.components(separatedBy: "\"role\"").count == 2)  // exactly one role chunk
            #expect(!result.body.contains("model-a"))
            #expect(result.body.contains("model-b"))
            #expect(f.a.requests.count == 1 && f.b.requests.count == 1)
        }
    }

    @Test(arguments: ["cut", "error-event"])
    func aBreakAfterContentIsReportedInBand(fault: String) async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(accessLog: .text("$status $llm_error_class")))
            // The fault comes only after the client has received content (the gate opens then).
            let events = Array(
                FakeLLM.chatStream(model: "model-a", words: ["Hel", "lo"], includeUsage: false).prefix(3))
            f.a.reply { _ in
                fault == "cut"
                    ? .sse(events: events + [": wait\n\n"], end: .cut, gateAfter: 3)
                    : .sse(events: events + ["event: error\ndata: {\"message\":\"overloaded\"}\n\n"], gateAfter: 3)
            }
            try await streamRoute(f, strategy: #""fallback_strategy":"http_5xx","#, second: true)
            var request = HTTPClientRequest(url: f.gw.proxyBase + "/anything")
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: streamBody))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            var received = ""
            var iterator = response.body.makeAsyncIterator()
            while !received.contains("Hel"), let chunk = try await iterator.next() { received += String(buffer: chunk) }
            f.a.openGate()
            while let chunk = try await iterator.next() { received += String(buffer: chunk) }
            let result = HTTPResult(status: Int(response.status.code), headers: response.headers, body: received)
            let data = dataLines(result.body)
            #expect(result.body.contains("Hel") && result.body.contains("lo"))
            #expect(!data.contains("[DONE]"))
            let last = try JSONParser.parse(try #require(data.last))
            #expect(last["error"]?["code"] == "stream_broken")
            #expect(f.b.requests.isEmpty)  // content had been sent: no restart from scratch
            let log = try await f.gw.finalAccessLog()
            #expect(log == "200 stream_broken\n")
        }
    }

    @Test func aCompleteStreamWithoutDoneIsFinishedByTheGateway() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let events = FakeLLM.chatStream(model: "model-a", words: ["ok"], includeUsage: true).dropLast()
            f.a.reply { _ in .sse(events: Array(events)) }
            try await streamRoute(f)
            let data = dataLines(try await f.chat(streamBody).body)
            #expect(data.last == "[DONE]")
            #expect(data.filter { $0 == "[DONE]" }.count == 1)
        }
    }

    @Test func streamsReuseTheClientsConnection() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            try await streamRoute(f)
            let client = try RawClient(port: f.gw.port("proxy0"))
            let request =
                "POST /anything HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(streamBody.utf8.count)\r\n\r\n\(streamBody)"
            for _ in 0..<2 {
                client.send(request)
                let response = await client.read(until: "\r\n0\r\n\r\n")
                #expect(response.hasPrefix("HTTP/1.1 200"))
                #expect(response.contains("data: [DONE]"))
                #expect(!response.lowercased().contains("connection: close"))
            }
            #expect(f.a.requests.count == 2)
        }
    }

    /// The one case where only the connection watch can notice the client: the upstream sent
    /// its first content and went silent, so no write to the client fails. Every timeout of the
    /// route is 60 s; the upstream's socket must see the gateway close it long before that.
    @Test(arguments: ["fin", "rst"])
    func aClientThatClosesWhileTheUpstreamIsSilentEndsTheRelay(how: String) async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let events = Array(FakeLLM.chatStream(model: "model-a", words: ["a"], includeUsage: false).prefix(2))
            let upstream = fx.own(try RawUpstream(mode: .streamThenHold(events: events)))
            let instance =
                #"{"name":"a","provider":"openai","weight":1,"auth":{},"override":{"endpoint":"\#(upstream.endpoint)"}}"#
            try await f.route(
                #"{"timeout":60000,"stream_idle_timeout_ms":60000,"request_timeout_ms":60000,"instances":[\#(instance)]}"#
            )
            let client = try RawClient(port: f.gw.port("proxy0"))
            client.send(
                "POST /anything HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(streamBody.utf8.count)\r\n\r\n\(streamBody)"
            )
            #expect(await client.read(until: "\"a\"").contains("\"a\""))
            #expect(try await f.gw.sample("apisix_llm_active_connections", ["node": "a"]) == 1)
            if how == "fin" { client.closeWrite() } else { client.reset() }
            // Not a timeout (60 s): the gateway closed the upstream because the client left.
            _ = try await first(of: upstream.peerClosed, within: .seconds(10))
            #expect(try await eventually { try await f.gw.sample("apisix_llm_active_connections", ["node": "a"]) == 0 })
            #expect(upstream.requests == 1)
        }
    }

    @Test func aClientThatGoesAwayCancelsTheUpstream() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let events = Array(FakeLLM.chatStream(model: "model-a", words: ["a"], includeUsage: false).prefix(2))
            f.a.reply { _ in .sse(events: events, end: .hang) }
            try await streamRoute(f)
            let url = f.gw.proxyBase + "/anything"
            let client = Task {
                var request = HTTPClientRequest(url: url)
                request.method = .POST
                request.headers.add(name: "content-type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: streamBody))
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                for try await chunk in response.body where String(buffer: chunk).contains("\"a\"") {
                    return
                }
            }
            try await client.value
            // The client has its first content and leaves (its connection is closed when the
            // request's body is abandoned); the upstream stream must be cancelled, not left running.
            let disconnects = f.a.disconnects
            let noticed = try await within(10) {
                var iterator = disconnects.makeAsyncIterator()
                return await iterator.next() != nil
            }
            #expect(noticed)
        }
    }
}

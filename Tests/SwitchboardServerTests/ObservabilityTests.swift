import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SwitchboardCore
import Testing

@Suite struct ObservabilityTests {
    static let seedFormat =
        #"$remote_addr - $remote_user [$time_local] $http_host "$request_line" $status $body_bytes_sent $request_time "$http_referer" "$http_user_agent" $upstream_addr $upstream_status $upstream_response_time "$upstream_scheme://$upstream_host$upstream_uri" "$apisix_request_id" "$request_type" "$llm_time_to_first_token" "$llm_model" "$llm_prompt_tokens" "$llm_completion_tokens""#

    @Test func theSeedsLogFormatForChatStreamAndDeadUpstream() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(accessLog: .text(Self.seedFormat)))
            f.a.reply { seen in
                let events = FakeLLM.chatStream(model: "gpt-4", words: ["2"], includeUsage: true)
                return seen.body["stream"] == true
                    ? .delayed(200, .sse(events: events))
                    : .delayed(150, .json(status: 200, body: FakeLLM.completion(model: "gpt-4")))
            }
            try await f.route(#"{"instances":[\#(f.instance("openai-instance", f.a, model: "gpt-4"))]}"#)
            let chat = try await f.chat(mathBody, headers: [("User-Agent", "curl/8.6.0")])
            let stream = try await f.chat(streamBody, headers: [("User-Agent", "curl/8.6.0")])
            let dead =
                #"{"name":"dead","provider":"openai","weight":1,"auth":{},"override":{"endpoint":"http://127.0.0.1:1"}}"#
            try await f.route(#"{"instances":[\#(dead)]}"#)
            _ = try await f.chat(mathBody, headers: [("User-Agent", "curl/8.6.0")])
            let lines = try await f.gw.finalAccessLog()
                .split(separator: "\n").map(String.init)
            try #require(lines.count == 3)
            let quoted = lines.map {
                $0.components(separatedBy: "\"").enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
            }
            try #require(quoted.allSatisfy { $0.count == 10 }, "\(lines)")
            // "request_line" "referer" "user agent" "upstream url" "request id" "type" "ttft" "model" "prompt" "completion"
            #expect(quoted[0][0] == "POST /anything HTTP/1.1")
            #expect(quoted[0][2] == "curl/8.6.0")
            #expect(quoted[0][3] == "http://127.0.0.1:\(f.a.port)/v1/chat/completions")
            #expect(quoted[0][4] == chat.headers.first(name: "x-request-id"))
            #expect(quoted[0][5] == "ai_chat")
            #expect(Array(quoted[0][7...]) == ["gpt-4", "23", "8"])
            // Without a stream the first token is the whole body: at least the fake's 150 ms, and
            // within the request's own time ($request_time, seconds with millisecond resolution).
            let chatTTFT = try #require(Int(quoted[0][6]), "ttft \(quoted[0][6])")
            #expect(chatTTFT >= 150)
            let unquoted = lines[0].components(separatedBy: "\"").enumerated().filter { $0.offset % 2 == 0 }
            let requestTime = try #require(
                unquoted[1].element.split(separator: " ").last.flatMap { Double($0) }, "\(unquoted[1].element)")
            #expect(Double(chatTTFT) <= requestTime * 1000 + 1, "ttft \(chatTTFT) ms, request \(requestTime) s")
            #expect(lines[0].contains(" 200 \(chat.body.utf8.count) "))
            #expect(lines[0].contains(" 127.0.0.1:\(f.a.port) 200 "))
            #expect(quoted[1][4] == stream.headers.first(name: "x-request-id"))
            #expect(quoted[1][5] == "ai_stream")
            let ttft = try #require(Int(quoted[1][6]))
            #expect(ttft >= 200, "ttft \(ttft)")  // at least the fake's first-chunk delay
            #expect(quoted[1][8] == "23" && quoted[1][9] == "8")
            #expect(quoted[2][6] == "0")  // unreachable upstream: no first token
            #expect(lines[2].contains("\" 502 "))
        }
    }

    @Test func jsonLinesWithSummariesAndPayloads() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(accessLog: .json))
            try await f.route(
                #"{"logging":{"summaries":true,"payloads":true},"instances":[\#(f.instance("a", f.a, model: "gpt-4"))]}"#
            )
            _ = try await f.chat(#"{"user":"u-7","messages":[{"role":"user","content":"What is 1+1?"}]}"#)
            _ = try await f.chat(streamBody)
            let lines = try await f.gw.finalAccessLog()
                .split(separator: "\n")
            try #require(lines.count == 2)
            let first = try JSONParser.parse(String(lines[0]))
            #expect(first["status"] == "200" && first["request_type"] == "ai_chat" && first["llm_model"] == "gpt-4")
            #expect(first["llm_summary"]?["prompt_tokens"] == 23 && first["llm_summary"]?["end_user_id"] == "u-7")
            #expect(first["llm_request"]?["messages"]?[0]?["content"] == "What is 1+1?")
            #expect(first["llm_response_text"]?["content"] == "1+1 equals 2.")
            let second = try JSONParser.parse(String(lines[1]))
            #expect(second["llm_summary"]?["stream"] == true)
            #expect(second["llm_response_text"]?["content"] == "1+1 equals 2.")
        }
    }

    @Test func metricsMove() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .json(status: 503, body: "busy") }
            let a = f.instance("a", f.a, model: "gpt-4", extra: #","priority":1"#)
            try await f.route(
                #"{"fallback_strategy":"http_5xx","instances":[\#(a),\#(f.instance("b", f.b, model: "gpt-4"))]}"#)
            #expect((try await f.chat(#"{"model":"gpt-3","messages":[]}"#)).status == 200)
            #expect((try await f.chat(streamBody)).status == 200)
            let text = try await f.gw.metrics()
            let labels = [
                // The client's `gpt-3` is no configured model: its label is `other` (bounded series).
                "route_id": "ai", "node": "b", "request_type": "ai_chat", "request_llm_model": "other",
                "llm_model": "gpt-4",
            ]
            #expect(sample(text, "apisix_llm_prompt_tokens", labels) == 23)
            #expect(sample(text, "apisix_llm_completion_tokens", labels) == 8)
            #expect(sample(text, "apisix_llm_latency_count", labels.merging(["type": "total"]) { a, _ in a }) == 1)
            #expect(sample(text, "apisix_llm_latency_count", ["type": "ttft", "request_type": "ai_stream"]) == 1)
            #expect(sample(text, "apisix_llm_prompt_tokens_dist_count", labels) == 1)
            #expect(sample(text, "apisix_http_status", ["code": "200", "route": "ai", "request_type": "ai_chat"]) == 1)
            #expect(
                sample(text, "apisix_http_status", ["code": "200", "route": "ai", "request_type": "ai_stream"]) == 1)
            #expect(sample(text, "apisix_bandwidth", ["type": "egress", "route": "ai"]) ?? 0 > 0)
            #expect(
                sample(text, "switchboard_llm_fallbacks_total", ["from": "a", "to": "b", "reason": "http_503"]) == 2)
            #expect(sample(text, "switchboard_gateway_overhead_seconds_count", ["route_id": "ai"]) == 2)
            // Exact: every attempt's +1 has its −1, fallbacks included.
            #expect(sample(text, "apisix_llm_active_connections", ["node": "a"]) == 0)
            #expect(sample(text, "apisix_llm_active_connections", ["node": "b"]) == 0)
            #expect(sample(text, "switchboard_llm_instance_health", ["route_id": "ai", "node": "b"]) == 1)
        }
    }

    @Test func activeConnectionsCountInFlightRequests() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .gated(.json(status: 200, body: FakeLLM.completion(model: "m"))) }
            try await f.route(#"{"instances":[\#(f.instance("a", f.a))]}"#)
            let requests = (0..<3).map { _ in Task { try await f.chat() } }
            #expect(await eventually { f.a.requests.count == 3 })
            let during = try await f.gw.metrics()
            #expect(sample(during, "apisix_llm_active_connections", ["node": "a"]) == 3)
            f.a.openGate()
            for request in requests { _ = try await request.value }
            let after = try await f.gw.metrics()
            #expect(sample(after, "apisix_llm_active_connections", ["node": "a"]) == 0)
        }
    }

    @Test func rejectionsAndStreamErrorsAreCounted() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let cut = Array(FakeLLM.chatStream(model: "m", words: ["a", "b"], includeUsage: false).prefix(3))
            f.a.reply { _ in .sse(events: cut + ["event: error\ndata: {}\n\n"]) }
            let route = """
                {"uri":"/anything","plugins":{"ai-proxy-multi":{"instances":[\(f.instance("a", f.a))]},
                 "ai-rate-limiting":{"limit":1,"time_window":60}}}
                """
            #expect((try await f.gw.admin(.PUT, "/routes/ai", route)).status == 201)
            _ = try await f.chat(#"{"stream":true,"messages":[]}"#)
            f.a.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "m")) }
            _ = try await f.chat()
            #expect((try await f.chat()).status == 503)
            let text = try await f.gw.metrics()
            #expect(sample(text, "switchboard_stream_errors_total", ["reason": "upstream"]) == 1)
            #expect(sample(text, "switchboard_ratelimit_rejections_total", ["route_id": "ai", "instance": "a"]) == 1)
        }
    }

    /// A disk that stops taking writes (here a pipe nobody reads) never stalls a request:
    /// beyond `access_log.buffer_size` lines are dropped whole and counted.
    @Test func accessLogLinesAreDroppedNotWaitedForWhenTheBufferIsFull() async throws {
        try await withFixture { fx in
            let directory = TestGateway.makeDirectory()
            let path = directory.appendingPathComponent("access.log").path
            try #require(mkfifo(path, 0o600) == 0)
            let reader = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            try #require(reader >= 0)
            defer { close(reader) }
            let gw = try await fx.own(
                TestGateway.start(directory: directory, accessLog: .text("$http_x_pad")) { config, _ in
                    config.accessLogBufferSize = 64 * 1024
                })
            try #require(
                (try await gw.admin(.PUT, "/routes/m", #"{"uri":"/m","plugins":{"mocking":{"response_example":"x"}}}"#))
                    .status == 201)
            // 40 lines of 8 KiB: more than the pipe (64 KiB), the buffer (64 KiB) and one write in
            // progress can hold. Every request is answered all the same.
            let pad = String(repeating: "p", count: 8 * 1024)
            let requests = 40
            let statuses = try await within(30) {
                var statuses: [Int] = []
                for _ in 0..<requests {
                    statuses.append(try await gw.proxy(.GET, "/m", headers: [("X-Pad", pad)]).status)
                }
                return statuses
            }
            #expect(statuses == Array(repeating: 200, count: requests))
            let dropped = try #require(try await gw.sample("switchboard_access_log_dropped_total"))
            #expect(dropped >= 1)
            // Drain the pipe and stop: what was kept is whole lines, never a partial one.
            _ = fcntl(reader, F_SETFL, fcntl(reader, F_GETFL) & ~O_NONBLOCK)
            let drained = Task {
                await onThread { () -> [UInt8] in
                    var received: [UInt8] = []
                    var buffer = [UInt8](repeating: 0, count: 65536)
                    while true {
                        let n = read(reader, &buffer, buffer.count)
                        if n <= 0 { return received }
                        received += buffer[0..<n]
                    }
                }
            }
            await gw.stop()
            let lines = String(decoding: await drained.value, as: UTF8.self).split(separator: "\n")
            #expect(lines.allSatisfy { $0 == pad })
            #expect(lines.count + Int(dropped) == requests, "\(lines.count) kept, \(dropped) dropped")
        }
    }

    /// `GET /v1/cluster` on a node with its own store: just itself.
    @Test func theClusterViewOfASingleNode() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let view = try await gw.control("/v1/cluster")
            #expect(view["cluster"] == false && view["store"]?.stringValue?.hasPrefix("sqlite:") == true)
            let nodes = try #require(view["nodes"]?.arrayValue)
            #expect(nodes.count == 1 && nodes[0]["self"] == true && nodes[0]["version"] == "0.1.0")
        }
    }

    @Test func logFilesReopenOnSIGUSR1() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(
                TestGateway.start(accessLog: .text("$uri")))
            #expect(
                (try await gw.admin(.PUT, "/routes/m", #"{"uri":"/*","plugins":{"mocking":{"response_example":"x"}}}"#))
                    .status == 201)
            _ = try await gw.proxy(.GET, "/before")
            let log = gw.directory.appendingPathComponent("access.log")
            let rotated = gw.directory.appendingPathComponent("access.log.1")
            // Rotation: the file is moved away, then the gateway is told to reopen.
            #expect(await eventually { ((try? String(contentsOf: log, encoding: .utf8)) ?? "") == "/before\n" })
            try FileManager.default.moveItem(at: log, to: rotated)
            kill(getpid(), SIGUSR1)
            #expect(await eventually { FileManager.default.fileExists(atPath: log.path) })
            _ = try await gw.proxy(.GET, "/after")
            #expect(await eventually { ((try? String(contentsOf: log, encoding: .utf8)) ?? "") == "/after\n" })
            #expect(try String(contentsOf: rotated, encoding: .utf8) == "/before\n")
        }
    }
}

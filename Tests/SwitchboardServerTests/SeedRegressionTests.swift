import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SwitchboardCore
import Testing

/// Issue 12: what a new user hit on day one — each as the user saw it, end to end.
@Suite struct SeedRegressionTests {
    // MARK: - 1. A mistyped quota is refused, and an unreadable one fails closed

    @Test(arguments: [
        (#"{"limit":"ten","time_window":60}"#, #"property "limit" validation failed"#),
        (#"{"limit":10,"time_window":"soon"}"#, #"property "time_window" validation failed"#),
        (
            #"{"instances":[{"name":"a","limit":"x","time_window":60}]}"#,
            #"property "instances[1].limit" validation failed"#
        ),
        (
            #"{"rules":[{"count":"many","time_window":60,"key":"${consumer_name}"}]}"#,
            #"property "rules[1].count" validation failed"#
        ),
        (#"{"limit":"${http_x_limit ?? ten}","time_window":60}"#, #"the default in"#),
        (#"{"limit":"${}","time_window":60}"#, #"property "limit" validation failed"#),
        (#"{"limit":0.5,"time_window":60}"#, #"property "limit" validation failed"#),
    ])
    func mistypedQuotasAreRefused(plugin: String, message: String) async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let route =
                #"{"uri":"/anything","plugins":{"ai-proxy-multi":{"instances":[\#(f.instance("a", f.a))]},"ai-rate-limiting":\#(plugin)}}"#
            let result = try await f.gw.admin(.PUT, "/routes/q", route)
            #expect(result.status == 400)
            let error = try #require(result.json["error_msg"]?.stringValue)
            #expect(error.hasPrefix("failed to check the configuration of plugin ai-rate-limiting err: "), "\(error)")
            #expect(error.contains(message), "\(error)")
            #expect((try await f.gw.admin(.GET, "/routes/q")).status == 404)
        }
    }

    @Test func aQuotaExpressionThatDoesNotResolveFailsClosed() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "m", usage: (5, 5))) }
            let route =
                #"{"uri":"/anything","plugins":{"ai-proxy-multi":{"instances":[\#(f.instance("a", f.a))]},"ai-rate-limiting":{"limit":"${http_x_limit}","time_window":"${http_x_window ?? 60}"}}}"#
            #expect((try await f.gw.admin(.PUT, "/routes/q", route)).status == 201)

            let garbage = try await f.chat(headers: [("X-Limit", "abc")])
            #expect(garbage.status == 500)
            #expect(
                garbage.json["error_msg"]
                    == #"invalid rate limit: limit ${http_x_limit} resolved to "abc", not a positive integer"#)
            let missing = try await f.chat()
            #expect(missing.status == 500)
            #expect(
                missing.json["error_msg"] == "invalid rate limit: limit ${http_x_limit} is not set and has no default")
            let badWindow = try await f.chat(headers: [("X-Limit", "30"), ("X-Window", "-5")])
            #expect(badWindow.status == 500)
            #expect(f.a.requests.isEmpty)  // nothing got through unlimited

            let good = try await f.chat(headers: [("X-Limit", "30")])
            #expect(good.status == 200)
            #expect(good.headers.first(name: "x-ai-ratelimit-limit-a") == "30")
            #expect(f.a.requests.count == 1)
        }
    }

    // MARK: - 2. `$llm_model` is what was asked for

    @Test func theSeedsAccessLogExampleAsWritten() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(accessLog: .text(ObservabilityTests.seedFormat)))
            f.a.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "gpt-4-0613", usage: (23, 8))) }
            f.b.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "gpt-4o-2024-05-13", usage: (23, 8))) }
            try await f.route(#"{"instances":[\#(f.instance("openai-instance", f.a, model: "gpt-4"))]}"#)
            let chat = try await f.chat(mathBody, headers: [("User-Agent", "curl/8.6.0")])
            #expect(chat.json["model"] == "gpt-4-0613")  // the body keeps what the provider reported
            try await f.route(#"{"instances":[\#(f.instance("gpt4o", f.b, model: "gpt-4o"))]}"#)
            let second = try await f.chat(mathBody)
            #expect(second.json["model"] == "gpt-4o-2024-05-13")
            let metrics = try await f.gw.metrics()
            #expect(
                sample(metrics, "apisix_llm_prompt_tokens", ["node": "openai-instance", "llm_model": "gpt-4"]) == 23)
            #expect(sample(metrics, "apisix_llm_prompt_tokens", ["node": "gpt4o", "llm_model": "gpt-4o"]) == 23)
            let lines = try await f.gw.finalAccessLog()
                .split(separator: "\n").map(String.init)
            try #require(lines.count == 2)
            // The seed's line ends: "ai_chat" "<ttft>" "gpt-4" "23" "8"
            #expect(lines[0].hasSuffix(#"" "gpt-4" "23" "8""#), "\(lines[0])")
            #expect(lines[0].contains(#""ai_chat""#))
            #expect(lines[1].hasSuffix(#"" "gpt-4o" "23" "8""#), "\(lines[1])")
        }
    }

    @Test func theReportedModelIsItsOwnVariable() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(accessLog: .json))
            f.a.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "gpt-4-0613")) }
            try await f.route(#"{"instances":[\#(f.instance("a", f.a, model: "gpt-4"))]}"#)
            _ = try await f.chat(#"{"model":"asked","messages":[{"role":"user","content":"hi"}]}"#)
            let line = try await f.gw.finalAccessLog()
            let json = try JSONParser.parse(line.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(json["request_llm_model"] == "asked")
            #expect(json["llm_model"] == "gpt-4")
            #expect(json["llm_response_model"] == "gpt-4-0613")
        }
    }

    // MARK: - 3. A client that leaves a non-streamed call cancels it upstream

    @Test(arguments: ["fin", "rst"])
    func aClientThatLeavesCancelsTheUpstreamCall(how: String) async throws {
        try await withFixture { fx in
            let upstream = fx.own(try RawUpstream(mode: .holdOpen))
            let gw = try await fx.own(
                TestGateway.start(accessLog: .text("$status $request_type")))
            let instance =
                #"{"name":"slow","provider":"openai","weight":1,"auth":{"header":{"Authorization":"Bearer k"}},"override":{"endpoint":"\#(upstream.endpoint)"}}"#
            let route =
                #"{"uri":"/anything","plugins":{"ai-proxy-multi":{"response_header_timeout_ms":60000,"instances":[\#(instance)]},"ai-rate-limiting":{"limit":1000,"time_window":60}}}"#
            #expect((try await gw.admin(.PUT, "/routes/ai", route)).status == 201)

            let client = try RawClient(port: gw.port("proxy0"))
            let body = #"{"messages":[{"role":"user","content":"write a long essay"}],"max_tokens":100}"#
            client.send(
                "POST /anything HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            )
            var arrived = upstream.arrived.makeAsyncIterator()
            _ = await arrived.next()
            let metrics = try await gw.metrics()
            #expect(sample(metrics, "apisix_llm_active_connections", ["node": "slow"]) == 1)
            if how == "fin" { client.closeWrite() } else { client.reset() }

            // The upstream connection is closed by the gateway, not by a timeout (60 s here).
            _ = try await first(of: upstream.peerClosed, within: .seconds(10))

            let line = try await gw.firstAccessLogLine()
            #expect(line == "499 ai_chat")
            let after = try await gw.metrics()
            #expect(sample(after, "apisix_llm_active_connections", ["node": "slow"]) == 0)
            // The reservation (prompt + max_tokens) was released: the quota is whole.
            #expect(
                sample(after, "switchboard_ratelimit_rejections_total") == nil
                    || sample(after, "switchboard_ratelimit_rejections_total") == 0)
            #expect(upstream.requests == 1)  // no fallback, no retry for a client that left
        }
    }

    // MARK: - 4. A key sent as a query parameter is never logged

    @Test(arguments: [false, true])
    func aQueryKeyIsRedactedInTheAccessLog(json: Bool) async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(
                    accessLog: TestAccessLog(
                        format: #"$request_uri "$request_line" $args $arg_apikey $arg_x $upstream_uri"#, json: json)))
            #expect(
                (try await f.gw.admin(
                    .PUT, "/consumers", #"{"username":"jack","plugins":{"key-auth":{"key":"sk-secret-1"}}}"#))
                    .status == 201)
            let gemini =
                #"{"name":"g","provider":"openai-compatible","weight":1,"auth":{"query":{"key":"AIza-provider-secret"}},"override":{"endpoint":"\#(f.a.endpoint)/v1/chat/completions"}}"#
            #expect(
                (try await f.gw.admin(
                    .PUT, "/routes/ai",
                    #"{"uri":"/anything","plugins":{"key-auth":{},"ai-proxy-multi":{"instances":[\#(gemini)]}}}"#))
                    .status
                    == 201)
            let ok = try await f.gw.proxy(
                .POST, "/anything?apikey=sk-secret-1&x=1", body: mathBody,
                headers: [("Content-Type", "application/json")])
            #expect(ok.status == 200)
            let wrong = try await f.gw.proxy(
                .POST, "/anything?x=2&apikey=sk-wrong-2", body: mathBody,
                headers: [("Content-Type", "application/json")])
            #expect(wrong.status == 401)
            #expect(f.a.requests.first?.query == "key=AIza-provider-secret")  // the provider still gets its key
            let log = try await f.gw.finalAccessLog()
            #expect(!log.contains("sk-secret-1") && !log.contains("sk-wrong-2") && !log.contains("AIza"), "\(log)")
            #expect(log.contains("apikey=***"))
            if !json {
                let lines = log.split(separator: "\n")
                try #require(lines.count == 2)
                #expect(
                    lines[0]
                        == #"/anything?apikey=***&x=1 "POST /anything?apikey=***&x=1 HTTP/1.1" apikey=***&x=1 *** 1 /v1/chat/completions?key=***"#
                )
            }
        }
    }

    // MARK: - 5. A chunked body over the limit is a 413, like a declared one

    @Test(arguments: [true, false])
    func aBodyOverTheLimitIs413(chunked: Bool) async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start { config, _ in config.proxyMaxBodySize = 1024 })
            try await f.route(#"{"instances":[\#(f.instance("a", f.a))]}"#)
            #expect(
                (try await f.gw.admin(
                    .PUT, "/routes/vars",
                    #"{"uri":"/byvars","vars":[["post_arg.model","==","x"]],"upstream":{"nodes":{"\#(f.a.endpoint.dropFirst(7))":1}}}"#
                )).status == 201)
            let big =
                #"{"model":"x","messages":[{"role":"user","content":""# + String(repeating: "a", count: 4000) + #""}]}"#
            for path in ["/anything", "/byvars"] {
                var request = HTTPClientRequest(url: f.gw.proxyBase + path)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                let bytes = ByteBuffer(string: big)
                if chunked {
                    let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
                    for offset in stride(from: 0, to: bytes.readableBytes, by: 512) {
                        continuation.yield(bytes.getSlice(at: offset, length: min(512, bytes.readableBytes - offset))!)
                    }
                    continuation.finish()
                    request.body = .stream(stream, length: .unknown)
                } else {
                    request.body = .bytes(bytes)
                }
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
                #expect(response.status.code == 413, "\(path): \(text)")
                #expect(
                    text == #"{"error_msg":"request body is larger than the limit of 1024 bytes"}"# + "\n", "\(path)")
            }
            #expect(f.a.requests.isEmpty)
        }
    }

    // MARK: - 6. `GET /v1/models` lists the route's models

    @Test func modelsAreListedWithoutCallingAnUpstream() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let instances = [
                f.instance("a", f.a, model: "gpt-4o"), f.instance("b", f.b, model: "gpt-4o"),
                f.instance("c", f.b, provider: "deepseek", model: "deepseek-chat"), f.instance("d", f.b),
            ]
            #expect(
                (try await f.gw.admin(
                    .PUT, "/routes/llm",
                    #"{"uri":"/v1/*","plugins":{"ai-proxy-multi":{"instances":[\#(instances.joined(separator: ","))]}}}"#
                ))
                .status == 201)
            let list = try await f.gw.proxy(.GET, "/v1/models")
            #expect(list.status == 200)
            #expect(list.headers.first(name: "content-type") == "application/json")
            #expect(
                list.json
                    == [
                        "object": "list",
                        "data": [
                            ["id": "gpt-4o", "object": "model", "created": 0, "owned_by": "openai"],
                            ["id": "deepseek-chat", "object": "model", "created": 0, "owned_by": "deepseek"],
                        ],
                    ])
            let one = try await f.gw.proxy(.GET, "/v1/models/deepseek-chat")
            #expect(one.json["owned_by"] == "deepseek")
            let none = try await f.gw.proxy(.GET, "/v1/models/nope")
            #expect(none.status == 404)
            #expect(none.json["error"]?["code"] == "model_not_found")
            #expect(f.a.requests.isEmpty && f.b.requests.isEmpty)
        }
    }

    // MARK: - 7. Concurrent Admin API writes all land, references stay whole

    @Test func concurrentCreatesAllLand() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            for round in 0..<3 {
                let statuses = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                    for i in 0..<20 {
                        group.addTask {
                            let result = try await gw.admin(
                                .POST, "/routes", #"{"uri":"/r\#(round)-\#(i)","plugins":{}}"#)
                            return (result.status, result.json["key"]?.stringValue ?? result.body)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(statuses.allSatisfy { $0.0 == 201 }, "\(statuses.filter { $0.0 != 201 })")
                #expect(Set(statuses.map(\.1)).count == 20)
            }
            #expect((try await gw.admin(.GET, "/routes")).json["total"] == 60)
        }
    }

    @Test func concurrentPatchesAreNotLost() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            #expect((try await gw.admin(.PUT, "/routes/p", #"{"uri":"/p","plugins":{}}"#)).status == 201)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<20 {
                    group.addTask {
                        let result = try await gw.admin(.PATCH, "/routes/p", #"{"labels":{"k\#(i)":"v"}}"#)
                        #expect(result.status == 200)
                    }
                }
                try await group.waitForAll()
            }
            let labels = (try await gw.admin(.GET, "/routes/p")).json["value"]?["labels"]?.objectValue
            #expect(labels?.count == 20)
        }
    }

    @Test func aDeleteRacingAReferenceNeverLeavesADanglingRoute() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            for i in 0..<15 {
                #expect((try await gw.admin(.PUT, "/upstreams/u\(i)", #"{"nodes":{"127.0.0.1:1":1}}"#)).status == 201)
                async let deleted = gw.admin(.DELETE, "/upstreams/u\(i)")
                async let routed = gw.admin(.PUT, "/routes/r\(i)", #"{"uri":"/r\#(i)","upstream_id":"u\#(i)"}"#)
                let (d, r) = try await (deleted, routed)
                // Exactly one wins, and the loser says why.
                #expect(
                    (d.status == 200) != (r.status == 201), "delete \(d.status) \(d.body) route \(r.status) \(r.body)")
                if d.status == 200 {
                    #expect(r.status == 400 && r.body.contains("failed to fetch upstream info by upstream id [u\(i)]"))
                } else {
                    #expect(d.status == 400 && d.body.contains("is still using it now"))
                }
            }
            // Whatever won, every stored route's upstream exists.
            let routes = (try await gw.admin(.GET, "/routes")).json["list"]?.arrayValue ?? []
            let upstreams = Set(
                ((try await gw.admin(.GET, "/upstreams")).json["list"]?.arrayValue ?? []).compactMap {
                    $0["value"]?["id"]?.stringValue
                })
            for route in routes {
                let id = try #require(route["value"]?["upstream_id"]?.stringValue)
                #expect(upstreams.contains(id))
            }
        }
    }

    // MARK: - 8. Messages that say what happened

    @Test func upstreamErrorsSayWhatHappened() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let dead =
                #"{"name":"dead","provider":"openai","weight":1,"auth":{},"override":{"endpoint":"http://127.0.0.1:1"}}"#
            try await f.route(#"{"instances":[\#(dead)]}"#)
            let refused = try await f.chat()
            #expect(refused.status == 502)
            #expect(refused.json["error"]?["message"] == "connection refused by 127.0.0.1:1")

            f.a.reply { _ in .hang }
            try await f.route(#"{"response_header_timeout_ms":300,"instances":[\#(f.instance("a", f.a))]}"#)
            let silent = try await f.chat()
            #expect(silent.status == 504)
            #expect(
                silent.json["error"]?["message"]?.stringValue
                    == "no response headers from 127.0.0.1:\(f.a.port) within 300 ms")
        }
    }
}

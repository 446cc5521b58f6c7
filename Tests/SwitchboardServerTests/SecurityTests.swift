import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import SwitchboardCore
import Testing

@testable import SwitchboardServer

/// Issue 19: one request from any client must never crash the gateway, escape its route,
/// exhaust its memory or leak a key. A crash here ends the test process, so every test that
/// reaches a formerly trapping path also asserts the gateway still serves afterwards.
@Suite struct SecurityTests {
    // MARK: - Crashes

    @Test func extremeMaxTokensAndUsageNeverTrap() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let huge = "9223372036854775807"
            f.a.reply { seen in
                seen.body["max_tokens"] == nil
                    ? .json(
                        status: 200,
                        body:
                            #"{"model":"m","choices":[],"usage":{"prompt_tokens":\#(huge),"completion_tokens":\#(huge),"total_tokens":1e308}}"#
                    )
                    : .json(status: 200, body: FakeLLM.completion(model: "m"))
            }
            let route =
                #"{"uri":"/anything","plugins":{"ai-proxy-multi":{"instances":[\#(f.instance("a", f.a))]},"ai-rate-limiting":{"limit":100000,"time_window":60,"limit_strategy":"expression","cost_expr":"prompt_tokens * completion_tokens * 1000000000000000000000"}}}"#
            #expect((try await f.gw.admin(.PUT, "/routes/ai", route)).status == 201)
            for field in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
                for value in [huge, "-\(huge)", "1e300", "-1e300", "1.5"] {
                    let body = #"{"messages":[{"role":"user","content":"hi"}],"\#(field)":\#(value)}"#
                    let result = try await f.chat(body)
                    #expect(result.status == 200 || result.status == 503, "\(field)=\(value): \(result.status)")
                }
            }
            _ = try await f.chat()  // usage of 2^63-1 tokens from the upstream
            _ = try await f.chat()
            #expect((try await HTTP.send(.GET, f.gw.metricsURL)).status == 200)  // still alive
        }
    }

    @Test(arguments: ["nan", "NaN", "inf", "-inf", "1e400", "-5"])
    func aNonFiniteRetryAfterIsNoHint(value: String) async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in
                .json(status: 429, body: "slow down", headers: [("Retry-After", value), ("retry-after-ms", value)])
            }
            let a = f.instance("a", f.a, extra: #","priority":1"#)
            try await f.route(
                #"{"fallback_strategy":["http_429"],"retry":{"per_instance":1,"backoff_ms":1},"instances":[\#(a),\#(f.instance("b", f.b))]}"#
            )
            let result = try await f.chat()
            #expect(result.status == 200)
            #expect((try await f.chat()).status == 200)
        }
    }

    @Test func pagingPastTheEndIsEmpty() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            #expect((try await gw.admin(.PUT, "/routes/a", #"{"uri":"/a","plugins":{}}"#)).status == 201)
            for page in ["9223372036854775807", "4611686018427387904", "-9223372036854775808", "0", "2"] {
                let result = try await gw.admin(
                    .GET, "/routes?page_size=10&page=\(page)", key: TestGateway.viewerKey)
                #expect(result.status == 200)
                #expect(result.json["total"] == 1)
            }
            #expect((try await gw.admin(.GET, "/routes?page_size=10&page=1")).json["list"]?.arrayValue?.count == 1)
        }
    }

    @Test func deepDocumentsAreRefusedAndNeverStored() async throws {
        try await withFixture { fx in
            let directory = TestGateway.makeDirectory()
            let gw = try await fx.own(TestGateway.start(directory: directory))
            #expect((try await gw.admin(.PUT, "/routes/x", #"{"uri":"/x","plugins":{}}"#)).status == 201)
            let deepPath = "/routes/x/labels" + String(repeating: "/a", count: 300)
            let deep = try await gw.admin(.PATCH, deepPath, #""v""#)
            #expect(deep.status == 400)
            #expect(deep.json["error_msg"] == "invalid sub path: deeper than 64 levels")
            let nested = String(repeating: #"{"a":"#, count: 100) + "1" + String(repeating: "}", count: 100)
            let put = try await gw.admin(
                .PUT, "/routes/y", #"{"uri":"/y","plugins":{},"desc":"d","labels":\#(nested)}"#)
            #expect(put.status == 400)
            await gw.stop()
            // The store still reads back: a restart serves the stored route.
            let again = try await fx.own(TestGateway.start(directory: directory))
            #expect((try await again.admin(.GET, "/routes/x")).status == 200)
        }
    }

    // MARK: - Escaping the route

    @Test func dotSegmentsCannotLeaveTheRoute() async throws {
        try await withFixture { fx in
            let upstream = try await fx.own(FakeUpstream.start(name: "pub"))
            let gw = try await fx.own(TestGateway.start())
            #expect(
                (try await gw.admin(
                    .PUT, "/routes/pub", #"{"uri":"/pub/*","upstream":{"nodes":{"\#(upstream.address)":1}}}"#))
                    .status == 201)
            for path in ["/pub/../admin/secret", "/pub/%2e%2e/admin/secret", "/pub/%2E%2e/admin", "/pub/./../admin"] {
                let result = try await gw.proxy(.GET, path)
                #expect(result.status == 404, "\(path)")
            }
            #expect((try await gw.proxy(.GET, "/../etc/passwd")).status == 400)
            let merged = try await gw.proxy(.GET, "/pub//a/./b/../c")
            #expect(merged.status == 200)
            #expect(upstream.requests.map(\.path) == ["/pub/a/c"])
        }
    }

    @Test func anAIRouteCannotBeLeftForAnotherProviderEndpoint() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let instance =
                #"{"name":"a","provider":"openai-compatible","weight":1,"auth":{"header":{"Authorization":"Bearer operator"}},"override":{"endpoint":"\#(f.a.endpoint)"}}"#
            #expect(
                (try await f.gw.admin(
                    .PUT, "/routes/chat",
                    #"{"uri":"/v1/chat/*","plugins":{"ai-proxy-multi":{"instances":[\#(instance)]}}}"#
                )).status == 201)
            let escaped = try await f.gw.proxy(
                .POST, "/v1/chat/../../v1/organization/admin_api_keys", body: #"{"name":"x"}"#,
                headers: [("Content-Type", "application/json")])
            #expect(escaped.status == 404)
            #expect(f.a.requests.isEmpty)
        }
    }

    // MARK: - Memory and cardinality

    @Test func aBodyIsReadBeforeAuthOnlyForRoutesThatNeedItAndOnlySoMuch() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            #expect(
                (try await gw.admin(
                    .PUT, "/routes/gpt",
                    #"{"uri":"/gpt","vars":[["post_arg.model","==","gpt-4o"]],"plugins":{"mocking":{"response_example":"ok"}}}"#
                )).status == 201)
            // An unknown path answers at once without waiting for (or reading) a 60 MB body.
            let client = try RawClient(port: gw.port("proxy0"))
            client.send(
                "POST /unknown HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000000\r\n\r\n[0,0,0"
            )
            let unknown = await client.read(until: "Route Not Found")
            #expect(unknown.hasPrefix("HTTP/1.1 404"), "\(unknown.prefix(200))")
            // A path whose route reads the body: more than the pre-auth limit (1 MiB) is refused.
            let other = try RawClient(port: gw.port("proxy0"))
            other.send(
                "POST /gpt HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n[0,0"
            )
            let refused = await other.read(until: "bytes\"}")
            #expect(refused.hasPrefix("HTTP/1.1 413"), "\(refused.prefix(200))")
            #expect(refused.contains("request body is larger than the limit of 1048576 bytes"))
            let matched = try await gw.proxy(
                .POST, "/gpt", body: #"{"model":"gpt-4o"}"#, headers: [("Content-Type", "application/json")])
            #expect(matched.body == "ok")
        }
    }

    @Test func metricLabelsDoNotFollowTheRequest() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            try await f.route(#"{"instances":[\#(f.instance("a", f.a, model: "gpt-4o"))]}"#, uri: "/anything/*")
            for i in 0..<30 {
                _ = try await f.gw.proxy(
                    .POST, "/anything/\(i)", body: #"{"model":"client-model-\#(i)","messages":[]}"#,
                    headers: [("Content-Type", "application/json"), ("Host", "host-\(i).example")])
            }
            let text = try await f.gw.metrics()
            let status = text.split(separator: "\n").filter { $0.hasPrefix("apisix_http_status{") }
            #expect(status.count == 1, "\(status)")
            #expect(status.first?.contains(#"matched_uri="/anything/*""#) == true)
            #expect(status.first?.contains(#"matched_host="""#) == true)
            #expect(status.first?.contains(#"request_llm_model="other""#) == true)
            #expect(!text.contains("client-model-") && !text.contains("host-1.example"))
        }
    }

    // MARK: - Keys that leak

    @Test func clientCredentialsNeverReachTheProvider() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            #expect(
                (try await f.gw.admin(
                    .PUT, "/consumers", #"{"username":"jack","plugins":{"key-auth":{"key":"jack-key"}}}"#))
                    .status == 201)
            let a = f.instance("a", f.a)  // sends Authorization: Bearer k-a
            #expect(
                (try await f.gw.admin(
                    .PUT, "/routes/ai",
                    #"{"uri":"/anything","plugins":{"key-auth":{},"ai-proxy-multi":{"instances":[\#(a)]}}}"#)).status
                    == 201
            )
            let result = try await f.chat(
                headers: [
                    ("apikey", "jack-key"), ("api-key", "azure-key"), ("x-api-key", "anthropic-key"),
                    ("Proxy-Authorization", "Basic xyz"), ("Connection", "keep-alive, X-Hop"), ("X-Hop", "hop-secret"),
                    ("X-Kept", "yes"),
                ])
            #expect(result.status == 200)
            let seen = try #require(f.a.requests.first).headers
            #expect(seen[.authorization] == "Bearer k-a")
            for name in ["apikey", "api-key", "x-api-key", "proxy-authorization", "x-hop"] {
                #expect(seen[HTTPField.Name(name)!] == nil, "\(name) was forwarded")
            }
            #expect(seen[HTTPField.Name("x-kept")!] == "yes")
        }
    }

    @Test func theAdminAPIIgnoresCookiesAndFormTypes() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let url = gw.adminBase + "/apisix/admin/routes/r"
            let body = #"{"uri":"/r","plugins":{}}"#
            let cookie = try await HTTP.send(
                .PUT, url, body: body, headers: [("Cookie", "X-API-KEY=\(TestGateway.adminKey)")])
            #expect(cookie.status == 401)
            for type in ["text/plain", "multipart/form-data; boundary=x"] {
                let result = try await HTTP.send(
                    .PUT, url, body: body, headers: [("X-API-KEY", TestGateway.adminKey), ("Content-Type", type)])
                #expect(result.status == 415, "\(type)")
            }
            #expect((try await gw.admin(.GET, "/routes/r")).status == 404)
            // APISIX's documented `curl -d` (form type) and JSON still work.
            for type in ["application/x-www-form-urlencoded", "application/json"] {
                let result = try await HTTP.send(
                    .PUT, url, body: body, headers: [("X-API-KEY", TestGateway.adminKey), ("Content-Type", type)])
                #expect(result.status == 201 || result.status == 200, "\(type)")
            }
        }
    }

    @Test func theTextAccessLogEscapesWhatClientsSend() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(
                TestGateway.start(accessLog: .text(#""$http_user_agent" "$http_referer""#)))
            #expect(
                (try await gw.admin(.PUT, "/routes/m", #"{"uri":"/m","plugins":{"mocking":{"response_example":"x"}}}"#))
                    .status == 201)
            _ = try await gw.proxy(.GET, "/m", headers: [("User-Agent", #"a" "forged\é"#), ("Referer", "ré")])
            let log = try await gw.finalAccessLog()
            #expect(log == #""a\x22 \x22forged\x5C\xC3\xA9" "r\xC3\xA9""# + "\n")
        }
    }

    @Test func bytesBeforeTheFirstTokenCountAgainstTheLimit() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let ping = ": " + String(repeating: "p", count: 200) + "\n\n"
            f.a.reply { _ in .sseTimed(events: Array(repeating: (0, ping), count: 50), end: .hang) }
            try await f.route(#"{"max_response_bytes":2000,"instances":[\#(f.instance("a", f.a))]}"#)
            let result = try await f.chat(streamBody)
            #expect(result.status == 502)
            #expect(result.body == "max_response_bytes exceeded")
        }
    }
}

/// Random and extreme numbers through every numeric path that takes them from outside.
@Suite struct NumericFuzzTests {
    static let extremes: [Int] = [
        0, 1, -1, Int.max, Int.min, Int.max - 1, Int.min + 1, 1 << 40, (1 << 40) + 1, 1 << 62, -(1 << 62),
    ]

    func randomInt(_ generator: inout some RandomNumberGenerator) -> Int {
        Bool.random(using: &generator)
            ? Self.extremes.randomElement(using: &generator)! : Int.random(in: .min ... .max, using: &generator)
    }

    @Test func usageQuotasAndCostsNeverTrap() throws {
        var generator = SystemRandomNumberGenerator()
        let expression = try CostExpression(
            "prompt_tokens * completion_tokens * 100000000000000000000 + total_tokens / 0.0001")
        let counters = LocalQuotaCounters()
        for i in 0..<5000 {
            let a = randomInt(&generator)
            let b = randomInt(&generator)
            let d = [Double.nan, .infinity, -.infinity, 1e308, -1e308, Double(a)].randomElement(using: &generator)!
            let usage = TokenUsage(
                .object([
                    "prompt_tokens": .int(a), "completion_tokens": .int(b),
                    "total_tokens": d.isFinite ? .double(d) : .int(a),
                ]))
            var sum = usage ?? TokenUsage()
            sum.add(TokenUsage(prompt: a, completion: b))
            sum.merge(TokenUsage(prompt: b, completion: a))
            #expect(sum.total >= 0 && sum.total <= Saturating.ceiling * 3)
            _ = expression.cost(usage?.raw ?? .null)
            let limit = max(1, a)
            let window = QuotaWindow(limit: limit, seconds: max(1, min(b, 1 << 40)))
            let key = "k\(i % 7)"
            if case .admitted(let reservation, _) = counters.reserve(key, window: window, estimate: a) {
                if Bool.random(using: &generator) {
                    counters.settle(reservation, actual: b)
                } else {
                    counters.release(reservation)
                }
            }
            counters.recordCompletion(key, completion: b)
            _ = counters.averageCompletion(key)
            let state = counters.peek(key, window: window)
            #expect(state.remaining >= 0)
            _ = state.admits
        }
    }

    @Test func retryHintsNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        let samples = ["nan", "-nan", "inf", "infinity", "-inf", "1e999", "-1e999", "0x1p1023", "9223372036854775807"]
        for _ in 0..<2000 {
            let text =
                Bool.random(using: &generator)
                ? samples.randomElement(using: &generator)! : String(Double.random(in: -1e300...1e300))
            var headers = HTTPFields()
            headers[.retryAfter] = text
            headers[HTTPField.Name("retry-after-ms")!] = text
            headers[HTTPField.Name("x-ratelimit-reset-requests")!] = text + "s"
            if let seconds = AIProxyHandler.retryAfter(headers) { #expect(seconds.isFinite && seconds >= 0) }
            _ = AIProxyHandler.retryHintMs(headers)
            _ = AIProxyHandler.parseGoDuration(text + "m" + text + "s")
        }
    }

    @Test func quotaAmountsNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let n = randomInt(&generator)
            let texts = [
                String(n), "${http_x ?? \(n)}", "${\(n)}", "\(n)\(n)", "${a ?? \(Double(n) * 1e10)}",
            ]
            for text in texts { _ = QuotaAmount.parse(.string(text)) }
            _ = QuotaAmount.parse(.int(n))
            _ = QuotaAmount.parse(.double(Double(n) * 1.5))
        }
    }
}

import Foundation
import Testing

/// The circuit breaker's promises in the README that the resilience suite does not cover: what
/// counts as a success, the open breaker under APISIX's "all unhealthy, use them all" rule,
/// and a half-open trial that never reached its instance.
@Suite struct BreakerTests {
    static let contentFilter =
        #"{"error":{"message":"The response was filtered","type":null,"param":"prompt","code":"content_filter","status":400}}"#

    /// `a` (priority 1, tried first) and `b`, with `plugin` fields before the instances.
    func route(_ f: AIFixture, _ plugin: String, b bExtra: String = "", limiting: String = "") async throws {
        let a = f.instance("a", f.a, model: "model-a", extra: #","priority":1"#)
        let b = f.instance("b", f.b, model: "model-b", extra: bExtra)
        let limit = limiting.isEmpty ? "" : #","ai-rate-limiting":\#(limiting)"#
        let body = #"{"uri":"/anything","plugins":{"ai-proxy-multi":{\#(plugin)"instances":[\#(a),\#(b)]}\#(limit)}}"#
        let result = try await f.gw.admin(.PUT, "/routes/ai", body)
        try #require(result.status == 201 || result.status == 200, "\(result.body)")
    }

    /// A client error and a content filter are answers: they reset the count of consecutive
    /// failures, so failures separated by them never open the breaker.
    @Test func clientErrorsAndContentFiltersCountAsSuccesses() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let calls = Counter()
            f.a.reply { _ in
                switch calls.next() {
                case 1: .json(status: 400, body: Self.contentFilter)
                case 3: .json(status: 422, body: #"{"error":{"message":"bad temperature"}}"#)
                default: .json(status: 503, body: "down")
                }
            }
            try await route(f, #""fallback_strategy":["http_5xx"],"breaker":{"failures":2,"open_ms":60000},"#)
            let statuses = [200, 400, 200, 422, 200]
            for (i, expected) in statuses.enumerated() {
                let result = try await f.chat()
                #expect(result.status == expected, "request \(i + 1): \(result.body)")
            }
            // Every request reached a: failures 1, 3 and 5 were never two in a row.
            #expect(f.a.requests.count == 5 && f.b.requests.count == 3)
            #expect(try await f.gw.healthNode("a")?["breaker"] == "closed")
        }
    }

    /// APISIX uses every instance when none is healthy; an open breaker stays out even then.
    @Test func anOpenBreakerIsSkippedEvenWhenEveryOtherInstanceIsUnhealthy() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .json(status: 503, body: "down") }
            f.b.reply { seen in
                seen.path == "/health"
                    ? .json(status: 500, body: "{}") : .json(status: 200, body: FakeLLM.completion(model: "model-b"))
            }
            let checks =
                #","checks":{"active":{"http_path":"/health","healthy":{"interval":1,"successes":1},"unhealthy":{"interval":1,"http_failures":1}}}"#
            try await route(
                f, #""fallback_strategy":["http_5xx"],"breaker":{"failures":1,"open_ms":60000},"#, b: checks)
            #expect(try await eventually { try await f.gw.healthNode("b")?["status"] == "unhealthy" })
            // a (preferred) fails and opens its breaker; b is unhealthy but the only one left.
            #expect(try await f.chat().json["model"] == "model-b")
            #expect(try await f.gw.healthNode("a")?["breaker"] == "open")
            for _ in 0..<4 { #expect(try await f.chat().json["model"] == "model-b") }
            #expect(f.a.requests.count == 1)
        }
    }

    /// A half-open trial claimed by a request that a quota then refused never reached the
    /// instance: it is given back at once (the breaker reads `open`, available), not held as
    /// `half_open` until the trial expires.
    @Test func aTrialThatNeverReachedTheInstanceIsGivenBack() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let calls = Counter()
            f.a.reply { _ in
                calls.next() == 0
                    ? .json(status: 503, body: "down") : .json(status: 200, body: FakeLLM.completion(model: "model-a"))
            }
            // b's answer (31 tokens) spends the team's quota of 30 (a rule: whatever the instance).
            try await route(
                f, #""fallback_strategy":["http_5xx"],"breaker":{"failures":1,"open_ms":1000},"#,
                limiting: #"{"rules":[{"count":30,"time_window":60,"key":"${http_x_team}"}]}"#)
            let team = [("x-team", "red")]
            #expect(try await f.chat(headers: team).json["model"] == "model-b")
            #expect(try await f.gw.healthNode("a")?["breaker"] == "open")
            // After open_ms a may take one trial.
            #expect(try await eventually { try await f.gw.healthNode("a")?["available"] == true })
            let refused = try await f.chat(headers: team)
            #expect(refused.status == 503, "\(refused.body)")  // a's quota is spent: the trial never left
            #expect(f.a.requests.count == 1)
            let node = try #require(try await f.gw.healthNode("a"))
            #expect(node["breaker"] == "open" && node["available"] == true, "\(node)")
        }
    }
}

import Foundation
import HTTPTypes
import NIOHTTP1
import SwitchboardCore
import Testing

@Suite struct AIFallbackTests {
    /// Instance a (priority 1) answers `failure`; b (priority 0) works.
    func run(_ fx: Fixtures, strategy: String, failure: FakeLLM.Reply, extra: String = "") async throws -> (
        AIFixture, HTTPResult
    ) {
        let f = try await fx.own(AIFixture.start())
        f.a.reply { _ in failure }
        let a = f.instance("a", f.a, model: "model-a", extra: #","priority":1"#)
        let b = f.instance("b", f.b, model: "model-b")
        try await f.route(#"{\#(strategy)\#(extra)"instances":[\#(a),\#(b)]}"#)
        return (f, try await f.chat())
    }

    @Test func rateLimitedFallsOverUnderHttp429() async throws {
        try await withFixture { fx in
            let (f, result) = try await run(
                fx,
                strategy: #""fallback_strategy":"http_429","#,
                failure: .json(
                    status: 429, body: #"{"error":{"message":"slow down"}}"#, headers: [("Retry-After", "7")]))
            #expect(result.status == 200 && result.json["model"] == "model-b")
            #expect(f.a.requests.count == 1 && f.b.requests.count == 1)
        }
    }

    @Test func serverErrorFallsOverUnderHttp5xx() async throws {
        try await withFixture { fx in
            let (_, result) = try await run(
                fx,
                strategy: #""fallback_strategy":["http_5xx"],"#, failure: .json(status: 503, body: #"{"error":"down"}"#)
            )
            #expect(result.status == 200 && result.json["model"] == "model-b")
        }
    }

    @Test func withoutAStrategyTheUpstreamErrorIsReturned() async throws {
        try await withFixture { fx in
            let (f, result) = try await run(
                fx,
                strategy: "",
                failure: .json(
                    status: 429, body: #"{"error":{"message":"slow down"}}"#, headers: [("Retry-After", "7")]))
            #expect(result.status == 429)
            #expect(result.json["error"]?["message"] == "slow down")
            #expect(result.headers.first(name: "retry-after") == "7")
            #expect(result.headers.first(name: "content-type") == "application/json")
            #expect(f.b.requests.isEmpty)
        }
    }

    @Test func configuredStatusesFallOver() async throws {
        try await withFixture { fx in
            let (_, result) = try await run(
                fx,
                strategy: #""fallback_http_statuses":[401],"#,
                failure: .json(status: 401, body: #"{"error":"bad key"}"#))
            #expect(result.status == 200 && result.json["model"] == "model-b")
        }
    }

    @Test func maxRetriesZeroReturnsTheFirstFailure() async throws {
        try await withFixture { fx in
            let (f, result) = try await run(
                fx,
                strategy: #""fallback_strategy":["http_5xx"],"max_retries":0,"#,
                failure: .json(status: 500, body: "slow internal error"))
            #expect(result.status == 500 && result.body == "slow internal error")
            #expect(f.b.requests.isEmpty)
        }
    }

    @Test func allInstancesFailingGives502WithTheLastBody() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            // (503, not 429: a 429 would cool `a` down and change the order of later requests.)
            f.a.reply { _ in .json(status: 503, body: #"{"error":"a"}"#) }
            f.b.reply { _ in .json(status: 500, body: #"{"error":"b"}"#) }
            let a = f.instance("a", f.a, extra: #","priority":1"#)
            try await f.route(
                #"{"fallback_strategy":["http_429","http_5xx"],"instances":[\#(a),\#(f.instance("b", f.b))]}"#)
            for _ in 0..<4 {
                let result = try await f.chat()
                #expect(result.status == 502)
                #expect(result.json == ["error": "b"])
            }
            #expect(f.a.requests.count == 4 && f.b.requests.count == 4)
        }
    }

    @Test func refusedConnectionIs502AndRetryable() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let dead =
                #"{"name":"dead","provider":"openai","weight":1,"priority":1,"auth":{},"override":{"endpoint":"http://127.0.0.1:1"}}"#
            try await f.route(#"{"instances":[\#(dead),\#(f.instance("b", f.b, model: "model-b"))]}"#)
            let noStrategy = try await f.chat()
            #expect(noStrategy.status == 502)
            #expect(noStrategy.json["error"]?["code"] == "upstream_unreachable")
            #expect(noStrategy.json["error"]?["type"] == "upstream_error")
            try await f.route(
                #"{"fallback_strategy":"http_5xx","instances":[\#(dead),\#(f.instance("b", f.b, model: "model-b"))]}"#)
            let fellOver = try await f.chat()
            #expect(fellOver.status == 200 && fellOver.json["model"] == "model-b")
        }
    }

    @Test func silentUpstreamIs504() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .hang }
            try await f.route(#"{"timeout":300,"instances":[\#(f.instance("a", f.a))]}"#)
            let result = try await f.chat()
            #expect(result.status == 504)
            #expect(result.json["error"]?["code"] == "upstream_timeout")
        }
    }

    @Test func priorityGroupsAreTriedInOrder() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let c = try await fx.own(FakeLLM.start(name: "c"))
            f.a.reply { _ in .json(status: 500, body: "a down") }
            f.b.reply { _ in .json(status: 500, body: "b down") }
            let plugin = """
                {"fallback_strategy":"http_5xx","instances":[
                  \(f.instance("low", c, model: "model-c", extra: #","priority":0"#)),
                  \(f.instance("high-1", f.a, extra: #","priority":5"#)),
                  \(f.instance("high-2", f.b, extra: #","priority":5"#))]}
                """
            try await f.route(plugin)
            for _ in 0..<3 {
                let result = try await f.chat()
                #expect(result.status == 200 && result.json["model"] == "model-c")
            }
            #expect(f.a.requests.count == 3 && f.b.requests.count == 3 && c.requests.count == 3)
        }
    }

    @Test func retryOnlyWhenTheFailureWasQuick() async throws {
        try await withFixture { fx in
            let (_, quick) = try await run(
                fx,
                strategy: #""fallback_strategy":"http_5xx","retry_on_failure_within_ms":100000,"#,
                failure: .json(status: 500, body: "quick"))
            #expect(quick.status == 200)
            let (g, slow) = try await run(
                fx,
                strategy: #""fallback_strategy":"http_5xx","retry_on_failure_within_ms":50,"#,
                failure: .delayed(200, .json(status: 500, body: "slow internal error")))
            #expect(slow.status == 500 && slow.body == "slow internal error")
            #expect(g.b.requests.isEmpty)
        }
    }

    @Test func chashKeepsAKeyOnOneInstanceAndWalksTheRingOnFailure() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let plugin = """
                {"fallback_strategy":"http_5xx","balancer":{"algorithm":"chash","hash_on":"header","key":"x-user"},
                 "instances":[\(f.instance("a", f.a, model: "model-a")),\(f.instance("b", f.b, model: "model-b"))]}
                """
            try await f.route(plugin)
            var byUser: [String: Set<String>] = [:]
            for user in ["u1", "u2", "u3", "u4", "u5", "u6"] {
                for _ in 0..<3 {
                    let result = try await f.chat(headers: [("x-user", user)])
                    byUser[user, default: []].insert(result.json["model"]?.stringValue ?? "?")
                }
            }
            #expect(byUser.values.allSatisfy { $0.count == 1 })
            #expect(Set(byUser.values.flatMap { $0 }).count == 2)
            // When a user's instance fails, the next one on the ring serves it.
            f.a.reply { _ in .json(status: 500, body: "down") }
            f.b.reply { _ in .json(status: 500, body: "down") }
            let both = try await f.chat(headers: [("x-user", "u1")])
            #expect(both.status == 502)
            f.a.reply(FakeLLM.standard(name: "a"))
            let user = try #require(byUser.first { $0.value == ["model-b"] }?.key)
            let moved = try await f.chat(headers: [("x-user", user)])
            #expect(moved.status == 200 && moved.json["model"] == "model-a")
        }
    }

    /// `chash` on a cookie, a variable (`arg_*`) and the consumer: each key stays on one
    /// instance, and different keys spread over both (all clients here share one address, so
    /// a key that is not read would put everything on one instance).
    @Test(arguments: ["cookie", "vars", "consumer"])
    func chashOnCookieVariableAndConsumer(hashOn: String) async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let users = ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"]
            let key = ["cookie": #","key":"session""#, "vars": #","key":"arg_user""#, "consumer": ""][hashOn] ?? ""
            var plugins = """
                "ai-proxy-multi":{"balancer":{"algorithm":"chash","hash_on":"\(hashOn)"\(key)},
                 "instances":[\(f.instance("a", f.a, model: "model-a")),\(f.instance("b", f.b, model: "model-b"))]}
                """
            if hashOn == "consumer" {
                plugins += #","key-auth":{}"#
                for user in users {
                    let created = try await f.gw.admin(
                        .PUT, "/consumers", #"{"username":"\#(user)","plugins":{"key-auth":{"key":"key-\#(user)"}}}"#)
                    try #require(created.status == 201)
                }
            }
            let route = try await f.gw.admin(.PUT, "/routes/ai", #"{"uri":"/anything","plugins":{\#(plugins)}}"#)
            try #require(route.status == 201, "\(route.body)")
            var byUser: [String: Set<String>] = [:]
            for user in users {
                for _ in 0..<3 {
                    let result: HTTPResult
                    switch hashOn {
                    case "cookie": result = try await f.chat(headers: [("Cookie", "theme=dark; session=\(user)")])
                    case "consumer": result = try await f.chat(headers: [("apikey", "key-\(user)")])
                    default:
                        result = try await f.gw.proxy(
                            .POST, "/anything?user=\(user)", body: mathBody,
                            headers: [("Content-Type", "application/json")])
                    }
                    try #require(result.status == 200, "\(result.body)")
                    byUser[user, default: []].insert(result.json["model"]?.stringValue ?? "?")
                }
            }
            #expect(byUser.values.allSatisfy { $0.count == 1 }, "\(byUser)")
            #expect(Set(byUser.values.flatMap { $0 }) == ["model-a", "model-b"], "\(byUser)")
        }
    }
}

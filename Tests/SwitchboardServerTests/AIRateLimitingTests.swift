import Foundation
import HTTPTypes
import NIOHTTP1
import SwitchboardCore
import Synchronization
import Testing

@Suite struct AIRateLimitingTests {
    /// A route with one instance answering `usage` and ai-rate-limiting `limiting`.
    func limited(_ limiting: String, usage: (Int, Int) = (5, 5)) async throws -> AIFixture {
        let f = try await AIFixture.start()
        f.a.reply { seen in .json(status: 200, body: FakeLLM.completion(model: "m", usage: usage)) }
        let route = """
            {"uri":"/anything","plugins":{
              "ai-proxy-multi":{"instances":[\(f.instance("openai-instance", f.a))]},
              "ai-rate-limiting":\(limiting)}}
            """
        #expect((try await f.gw.admin(.PUT, "/routes/ai", route)).status == 201)
        return f
    }

    static let remaining = "x-ai-ratelimit-remaining-openai-instance"

    /// A request whose upstream failed used nothing: its whole reservation (prompt + max_tokens)
    /// is released, and the next request sees the full quota.
    @Test func aReservationIsReleasedEntirelyWhenTheUpstreamFails() async throws {
        try await withFixture { fx in
            let f = try await fx.own(limited(#"{"limit":1000,"time_window":60}"#))
            let calls = Counter()
            f.a.reply { _ in
                calls.next() == 0
                    ? .json(status: 500, body: "oops") : .json(status: 200, body: FakeLLM.completion(model: "m"))
            }
            let body = #"{"max_tokens":600,"messages":[{"role":"user","content":"What is 1+1?"}]}"#
            let failed = try await f.chat(body)
            #expect(failed.status == 500 && failed.headers.first(name: Self.remaining) == "1000")
            let next = try await f.chat(body)
            #expect(next.status == 200)
            #expect(next.headers.first(name: Self.remaining) == "1000", "nothing consumed, nothing still reserved")
        }
    }

    /// Without `max_tokens` a request reserves its prompt plus the running average completion of
    /// its counter, visible in the remaining quota of a request admitted while it is in flight.
    @Test func withoutMaxTokensTheRunningAverageCompletionIsReserved() async throws {
        try await withFixture { fx in
            let f = try await fx.own(limited(#"{"limit":1000,"time_window":60}"#))
            let calls = Counter()
            let answer = FakeLLM.Reply.json(status: 200, body: FakeLLM.completion(model: "m", usage: (23, 40)))
            f.a.reply { _ in calls.next() == 1 ? .gated(answer) : answer }
            #expect(try await f.chat().headers.first(name: Self.remaining) == "1000")  // 63 spent, average 40
            let inFlight = Task { try await f.chat() }
            #expect(await eventually { f.a.requests.count == 2 })
            // 1000 − 63 spent − (3 for "What is 1+1?" + 40 average) reserved by the one in flight.
            let third = try await f.chat()
            #expect(third.headers.first(name: Self.remaining) == "894")
            f.a.openGate()
            #expect(try await inFlight.value.status == 200)
        }
    }

    @Test func totalTokensSequence() async throws {
        try await withFixture { fx in
            let f = try await fx.own(limited(#"{"limit":30,"time_window":60}"#))
            var remaining: [String] = []
            for _ in 0..<3 {
                let result = try await f.chat()
                #expect(result.status == 200)
                #expect(result.headers.first(name: "x-ai-ratelimit-limit-openai-instance") == "30")
                remaining.append(result.headers.first(name: "x-ai-ratelimit-remaining-openai-instance") ?? "-")
            }
            #expect(remaining == ["30", "20", "10"])
            let rejected = try await f.chat()
            #expect(rejected.status == 503)
            #expect(rejected.headers.first(name: "x-ai-ratelimit-remaining-openai-instance") == "0")
            let retryAfter = Int(rejected.headers.first(name: "retry-after") ?? "") ?? 0
            #expect((1...60).contains(retryAfter))
            #expect(f.a.requests.count == 3)
        }
    }

    @Test func completionTokensAndResetHeader() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                limited(
                    #"{"instances":[{"name":"openai-instance","limit":20,"time_window":60}],"limit_strategy":"completion_tokens","rejected_code":429,"rejected_msg":"quota spent"}"#
                ))
            var remaining: [String] = []
            var resets: [String] = []
            for _ in 0..<4 {
                let result = try await f.chat()
                remaining.append(result.headers.first(name: "x-ai-ratelimit-remaining-openai-instance") ?? "-")
                resets.append(result.headers.first(name: "x-ai-ratelimit-reset-openai-instance") ?? "-")
            }
            #expect(remaining == ["20", "15", "10", "5"])
            // Seconds left in the window: a whole number prints without decimals ("60"), else
            // with two ("59.98"); the window started with the first request.
            #expect(resets.allSatisfy { Double($0).map { $0 <= 60 && $0 > 50 } ?? false }, "\(resets)")
            #expect(resets.allSatisfy { !$0.contains(".") || ($0.split(separator: ".").last?.count ?? 0) <= 2 })
            let rejected = try await f.chat()
            #expect(rejected.status == 429)
            #expect(rejected.body == "{\"error_msg\":\"quota spent\"}\n")
        }
    }

    @Test func costExpression() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                limited(
                    #"{"limit":100,"time_window":60,"limit_strategy":"expression","cost_expr":"prompt_tokens + completion_tokens * 4"}"#
                ))
            _ = try await f.chat()
            let second = try await f.chat()
            #expect(second.headers.first(name: "x-ai-ratelimit-remaining-openai-instance") == "75")
        }
    }

    @Test func validationMessages() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let cases: [(String, String)] = [
                (#"{"time_window":60}"#, #"property "limit" is required when "time_window" is set"#),
                (#"{"limit":30}"#, #"property "time_window" is required when "limit" is set"#),
                (
                    #"{"limit":30,"time_window":60,"rejected_code":199}"#,
                    #"property "rejected_code" validation failed: expected 199 to be at least 200"#
                ),
                (
                    #"{"limit":30,"time_window":60,"limit_strategy":"x"}"#,
                    #"property "limit_strategy" validation failed: matches none of the enum values"#
                ),
                (
                    #"{"instances":[{"name":"a","limit":1,"time_window":1},{"limit":1,"time_window":1}]}"#,
                    #"property "instances" validation failed: failed to validate item 2: property "name" is required"#
                ),
                (
                    #"{"limit":30,"time_window":60,"instances":[{"name":"a","limit":1,"time_window":1}],"rules":[{"count":1,"time_window":1,"key":"k"}]}"#,
                    "value should match only one schema, but matches both schemas 1 and 2"
                ),
                (
                    #"{"limit":30,"time_window":60,"limit_strategy":"expression"}"#,
                    "cost_expr is required when limit_strategy is 'expression'"
                ),
                (
                    #"{"limit":30,"time_window":60,"limit_strategy":"expression","cost_expr":"os.exit()"}"#,
                    "invalid cost_expr: unknown function 'os.exit'"
                ),
                // Shared counters are the cluster store's, never Redis; a single node cannot share.
                (
                    #"{"limit":30,"time_window":60,"policy":"redis","redis_host":"127.0.0.1"}"#,
                    #"policy redis is not supported: nodes share counters through the cluster store; use policy "cluster" with store: postgres://..."#
                ),
                (
                    #"{"limit":30,"time_window":60,"policy":"redis-cluster"}"#,
                    #"policy redis-cluster is not supported: nodes share counters through the cluster store; use policy "cluster" with store: postgres://..."#
                ),
                (
                    #"{"limit":30,"time_window":60,"policy":"cluster"}"#,
                    "policy cluster needs the cluster store (store: postgres://...); this gateway's store is \(gw.storeLocation)"
                ),
                (
                    #"{"limit":30,"time_window":60,"sync_interval":100}"#,
                    "sync_interval applies to policy cluster only"
                ),
            ]
            for (config, message) in cases {
                let result = try await gw.admin(
                    .PUT, "/routes/r", #"{"uri":"/r","plugins":{"ai-rate-limiting":\#(config)}}"#)
                #expect(result.status == 400)
                #expect(
                    result.json["error_msg"]
                        == .string("failed to check the configuration of plugin ai-rate-limiting err: \(message)"),
                    "\(config)")
            }
        }
    }

    @Test func withoutAnAIProxyItDoesNothing() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let route =
                #"{"uri":"/m","plugins":{"mocking":{"response_example":"x"},"ai-rate-limiting":{"limit":1,"time_window":60}}}"#
            #expect((try await gw.admin(.PUT, "/routes/m", route)).status == 201)
            for _ in 0..<3 { #expect((try await gw.proxy(.GET, "/m")).status == 200) }
        }
    }

    @Test func seedPriorityAndRateLimitingExample() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.b.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "deepseek-chat", usage: (14, 31))) }
            // The seed's route with the missing quote after fallback_strategy mended and the endpoints local.
            let route = """
                {
                "id": "ai-proxy-multi-route",
                "uri": "/anything",
                "methods": ["POST"],
                "plugins": {
                "ai-proxy-multi": {
                "fallback_strategy": "instance_health_and_rate_limiting",
                "instances": [
                {"name": "openai-instance", "provider": "openai", "priority": 1, "weight": 0,
                 "auth": {"header": {"Authorization": "Bearer a"}}, "options": {"model": "gpt-4"},
                 "override": {"endpoint": "\(f.a.endpoint)"}},
                {"name": "deepseek-instance", "provider": "deepseek", "priority": 0, "weight": 0,
                 "auth": {"header": {"Authorization": "Bearer b"}}, "options": {"model": "deepseek-chat"},
                 "override": {"endpoint": "\(f.b.endpoint)"}}
                ]
                },
                "ai-rate-limiting": {
                "instances": [{"name": "openai-instance", "limit": 10, "time_window": 60}],
                "limit_strategy": "total_tokens"
                }
                }
                }
                """
            #expect((try await f.gw.admin(.PUT, "/routes", route)).status == 201)
            let first = try await f.gw.proxy(.POST, "/anything", body: mathBody)
            #expect(first.json["model"] == "gpt-4")
            #expect(first.json["usage"]?["total_tokens"] == 31)
            for _ in 0..<3 {
                let next = try await f.gw.proxy(
                    .POST, "/anything",
                    body:
                        #"{"messages":[{"role":"system","content":"You are a mathematician"},{"role":"user","content":"Explain Newton law"}]}"#
                )
                #expect(next.status == 200 && next.json["model"] == "deepseek-chat")
            }
            #expect(f.a.requests.count == 1 && f.b.requests.count == 3)
        }
    }

    @Test func allInstancesSpentGives503AllServersTried() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let route = """
                {"uri":"/*","plugins":{
                  "ai-proxy-multi":{"fallback_strategy":["rate_limiting"],"instances":[\(f.instance("a", f.a)),\(f.instance("b", f.b))]},
                  "ai-rate-limiting":{"limit":10,"time_window":60,"rejected_code":429}}}
                """
            #expect((try await f.gw.admin(.PUT, "/routes/ai", route)).status == 201)
            #expect((try await f.chat()).status == 200)
            #expect((try await f.chat()).status == 200)
            let spent = try await f.chat()
            #expect(spent.status == 503 && spent.body == "all servers tried")
            // Each instance has its own counter under the shared top-level limit.
            #expect(f.a.requests.count == 1 && f.b.requests.count == 1)
            // An Anthropic client hears it in Anthropic's shape.
            let anthropic = try await f.gw.proxy(
                .POST, "/v1/messages", body: #"{"max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#)
            #expect(anthropic.status == 503)
            #expect(
                anthropic.json == [
                    "type": "error", "error": ["type": "overloaded_error", "message": "all servers tried"],
                ])
        }
    }

    @Test func seedConsumersExample() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.b.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "deepseek-chat", usage: (14, 31))) }
            for (user, instance, key) in [
                ("johndoe", "openai-instance", "john-key"), ("janedoe", "deepseek-instance", "jane-key"),
            ] {
                let consumer = """
                    {"username": "\(user)", "plugins": {"ai-rate-limiting": {
                      "instances": [{"name": "\(instance)", "limit": 10, "time_window": 60}],
                      "rejected_code": 429, "limit_strategy": "total_tokens"}}}
                    """
                #expect((try await f.gw.admin(.PUT, "/consumers", consumer)).status == 201)
                let credential = #"{"id": "cred-\#(user)-key-auth", "plugins": {"key-auth": {"key": "\#(key)"}}}"#
                #expect((try await f.gw.admin(.PUT, "/consumers/\(user)/credentials", credential)).status == 201)
            }
            let route = """
                {"id": "ai-proxy-multi-route", "uri": "/anything", "methods": ["POST"], "plugins": {
                  "key-auth": {},
                  "ai-proxy-multi": {"fallback_strategy": "instance_health_and_rate_limiting", "instances": [
                    {"name": "openai-instance", "provider": "openai", "weight": 0, "auth": {"header": {"Authorization": "Bearer a"}},
                     "options": {"model": "gpt-4"}, "override": {"endpoint": "\(f.a.endpoint)"}},
                    {"name": "deepseek-instance", "provider": "deepseek", "weight": 0, "auth": {"header": {"Authorization": "Bearer b"}},
                     "options": {"model": "deepseek-chat"}, "override": {"endpoint": "\(f.b.endpoint)"}}]}}}
                """
            #expect((try await f.gw.admin(.PUT, "/routes", route)).status == 201)
            #expect((try await f.gw.proxy(.POST, "/anything", body: mathBody)).status == 401)

            func models(_ key: String, _ count: Int) async throws -> [String] {
                var models: [String] = []
                for _ in 0..<count {
                    let r = try await f.gw.proxy(.POST, "/anything", body: mathBody, headers: [("apikey", key)])
                    models.append(r.json["model"]?.stringValue ?? "status \(r.status)")
                }
                return models
            }
            // johndoe: once openai has served him (31 tokens > 10), only deepseek does.
            let john = try await models("john-key", 5)
            #expect(john.filter { $0 == "gpt-4" }.count == 1)
            #expect(john.suffix(3) == ["deepseek-chat", "deepseek-chat", "deepseek-chat"])
            // janedoe the other way round, with her own counters.
            let jane = try await models("jane-key", 5)
            #expect(jane.filter { $0 == "deepseek-chat" }.count == 1)
            #expect(jane.suffix(3) == ["gpt-4", "gpt-4", "gpt-4"])
        }
    }

    @Test func countersArePerConsumer() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            for user in ["jack1", "jack2"] {
                let consumer = """
                    {"username":"\(user)","plugins":{"key-auth":{"key":"\(user)-key"},
                     "ai-rate-limiting":{"limit":40,"time_window":60}}}
                    """
                #expect((try await f.gw.admin(.PUT, "/consumers", consumer)).status == 201)
            }
            let route =
                #"{"uri":"/anything","plugins":{"key-auth":{},"ai-proxy-multi":{"instances":[\#(f.instance("a", f.a))]}}}"#
            #expect((try await f.gw.admin(.PUT, "/routes/ai", route)).status == 201)
            for user in ["jack1", "jack2"] {
                var statuses: [Int] = []
                for _ in 0..<3 { statuses.append(try await f.chat(headers: [("apikey", "\(user)-key")]).status) }
                #expect(statuses == [200, 200, 503], "\(user)")
            }
        }
    }

    @Test func rulesByConsumerAndHeader() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            for user in ["ann", "bob"] {
                #expect(
                    (try await f.gw.admin(
                        .PUT, "/consumers", #"{"username":"\#(user)","plugins":{"key-auth":{"key":"\#(user)"}}}"#))
                        .status == 201)
            }
            let route = """
                {"uri":"/anything","plugins":{"key-auth":{},"ai-proxy-multi":{"instances":[\(f.instance("a", f.a))]},
                 "ai-rate-limiting":{"rules":[
                   {"count":40,"time_window":60,"key":"${consumer_name}"},
                   {"count":100,"time_window":60,"key":"${http_x_team}","header_prefix":"team"}]}}}
                """
            #expect((try await f.gw.admin(.PUT, "/routes/ai", route)).status == 201)
            let first = try await f.chat(headers: [("apikey", "ann"), ("x-team", "red")])
            #expect(first.headers.first(name: "x-ai-1-ratelimit-remaining") == "40")
            #expect(first.headers.first(name: "x-ai-team-ratelimit-remaining") == "100")
            let second = try await f.chat(headers: [("apikey", "ann"), ("x-team", "red")])
            #expect(second.headers.first(name: "x-ai-1-ratelimit-remaining") == "9")
            #expect(second.headers.first(name: "x-ai-team-ratelimit-remaining") == "69")
            #expect((try await f.chat(headers: [("apikey", "ann")])).status == 503)
            let bob = try await f.chat(headers: [("apikey", "bob")])
            #expect(bob.status == 200 && bob.headers.first(name: "x-ai-1-ratelimit-remaining") == "40")
            #expect(bob.headers.first(name: "x-ai-team-ratelimit-remaining") == nil)
        }
    }

    /// APISIX admits every request while `consumed < limit`, so concurrent requests on a nearly
    /// spent window all pass. Switchboard counts what is in flight.
    @Test func concurrentRequestsCannotOvershootByMoreThanOneRequest() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            // Every answer costs 30 tokens: 10 prompt + 20 completion; requests say max_tokens 20
            // and carry 40 bytes of text, so the gateway's estimate (10 + 20) is right.
            let body =
                #"{"max_tokens":20,"messages":[{"role":"user","content":"\#(String(repeating: "x", count: 40))"}]}"#
            f.a.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "m", usage: (10, 20))) }
            let route = """
                {"uri":"/anything","plugins":{"ai-proxy-multi":{"instances":[\(f.instance("a", f.a))]},
                 "ai-rate-limiting":{"limit":100,"time_window":60}}}
                """
            #expect((try await f.gw.admin(.PUT, "/routes/ai", route)).status == 201)
            #expect((try await f.chat(body)).status == 200)
            #expect((try await f.chat(body)).status == 200)  // 60 of 100 spent
            f.a.reply { _ in .gated(.json(status: 200, body: FakeLLM.completion(model: "m", usage: (10, 20)))) }
            let finished = Counter()
            let results = Task {
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<10 {
                        group.addTask {
                            let status = try await f.chat(body).status
                            finished.add()
                            return status
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            // Rejected requests come back at once; admitted ones wait at the upstream's gate.
            #expect(await eventually { finished.value + f.a.requests.count - 2 == 10 })
            f.a.openGate()
            let statuses = try await results.value
            let served = f.a.requests.count
            #expect(statuses.filter { $0 == 200 }.count == served - 2)
            #expect(statuses.filter { $0 == 503 }.count == 10 - (served - 2))
            // Charged = 30 per served request; the bound is limit + one request's cost.
            #expect(served * 30 <= 100 + 30, "served \(served)")
            #expect(served == 4)
        }
    }
}

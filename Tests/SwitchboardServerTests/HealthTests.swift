import Foundation
import NIOHTTP1
import SwitchboardCore
import Synchronization
import Testing

@testable import SwitchboardServer

@Suite struct HealthTests {
    /// Answers probes on /health with 200 while `up`, else 500 (counted in `failed`); chat as usual.
    func probed(_ llm: FakeLLM, up: Flag, failed: Counter = Counter()) {
        llm.reply { seen in
            if seen.path == "/health" {
                if up.isOn { return .json(status: 200, body: "{}") }
                failed.add()
                return .json(status: 500, body: "{}")
            }
            return FakeLLM.standard(name: llm.name)(seen)
        }
    }

    @Test func activeChecksTakeAnInstanceOutAndBringItBack() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let up = Flag(true)
            let failedProbes = Counter()
            probed(f.b, up: up, failed: failedProbes)
            let checks =
                #","checks":{"active":{"http_path":"/health","healthy":{"interval":1,"successes":1},"unhealthy":{"interval":1,"http_failures":2}}}"#
            try await f.route(
                #"{"instances":[\#(f.instance("a", f.a, model: "model-a")),\#(f.instance("b", f.b, model: "model-b", extra: checks))]}"#
            )
            // Checkers run from the moment the configuration is loaded: no request needed.
            #expect(await eventually { f.b.requests.contains { $0.path == "/health" } })
            #expect(f.b.requests.first { $0.path == "/health" }?.headers[.authorization] == "Bearer k-b")
            up.set(false)
            // Out once http_failures (2) probes in a row have failed: counted, not timed.
            #expect(try await eventually { try await f.gw.healthNode("b")?["status"]?.stringValue == "unhealthy" })
            #expect(failedProbes.value >= 2)
            let before = f.b.requests.filter { $0.path != "/health" }.count
            for _ in 0..<6 { #expect((try await f.chat()).json["model"] == "model-a") }
            #expect(f.b.requests.filter { $0.path != "/health" }.count == before)
            up.set(true)
            #expect(try await eventually { try await f.gw.healthNode("b")?["status"]?.stringValue == "healthy" })
            var models: Set<String> = []
            for _ in 0..<4 { models.insert(try await f.chat().json["model"]?.stringValue ?? "") }
            #expect(models == ["model-a", "model-b"])
        }
    }

    @Test func tcpChecksAndAllUnhealthyFallback() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let tcp =
                #","checks":{"active":{"type":"tcp","port":1,"healthy":{"interval":1},"unhealthy":{"interval":1,"tcp_failures":1}}}"#
            try await f.route(
                #"{"instances":[\#(f.instance("a", f.a, model: "model-a", extra: tcp)),\#(f.instance("b", f.b, model: "model-b", extra: tcp))]}"#
            )
            #expect(
                try await eventually {
                    let list = try await f.gw.control().arrayValue ?? []
                    return list.count == 2 && list.allSatisfy { $0["nodes"]?[0]?["status"] == "unhealthy" }
                })
            let entry = try await f.gw.control().arrayValue?.first
            #expect(entry?["type"] == "tcp")
            #expect(entry?["nodes"]?[0]?["counter"]?["tcp_failure"]?.intValue ?? 0 >= 1)
            // Every instance unhealthy: all are used rather than none.
            var models: Set<String> = []
            for _ in 0..<4 {
                let result = try await f.chat()
                #expect(result.status == 200)
                models.insert(result.json["model"]?.stringValue ?? "")
            }
            #expect(models == ["model-a", "model-b"])
        }
    }

    @Test func passiveChecksEjectAndHalfOpenRecovers() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let failing = Flag(true)
            f.a.reply { seen in
                failing.isOn ? .json(status: 500, body: "down") : FakeLLM.standard(name: "a")(seen)
            }
            let passive = #","checks":{"passive":{"unhealthy":{"http_failures":2},"cooldown":2}}"#
            try await f.route(
                #"{"fallback_strategy":"http_5xx","instances":[\#(f.instance("a", f.a, model: "model-a", extra: passive)),\#(f.instance("b", f.b, model: "model-b"))]}"#
            )
            for _ in 0..<6 { #expect((try await f.chat()).json["model"] == "model-b") }
            // Ejected after two failures in a row: nothing more reaches a before the 2 s cooldown
            // (a loaded machine may take longer for the burst: a trial after it fails again).
            try #require(f.a.requests.count >= 2)
            let ejectedAt = f.a.requests[1].at
            #expect(f.a.requests.dropFirst(2).allSatisfy { $0.at - ejectedAt >= .seconds(2) })
            let ejected = try await f.gw.control("/v1/healthcheck/routes/ai").arrayValue?.first?["nodes"]?[0]
            #expect(ejected?["status"] == "unhealthy" && ejected?["passive"] == "ejected")
            #expect(ejected?["breaker"] == .null)  // no breaker configured: ejection is not shown as one
            #expect(ejected?["cooldown_until"]?.doubleValue != nil)
            failing.set(false)
            // After the cooldown one trial request is let through; it succeeds and closes the breaker.
            #expect(
                try await eventually {
                    try await f.gw.control().arrayValue?.first?["nodes"]?[0]?["available"] == true
                })
            for _ in 0..<3 { _ = try await f.chat() }
            #expect(f.a.requests.count >= 3)
            let node = try await f.gw.control().arrayValue?.first?["nodes"]?[0]
            #expect(node?["status"] == "healthy" && node?["passive"] == "ok" && node?["breaker"] == .null)
        }
    }

    /// A stream that breaks after content is a passive failure of its instance (a cut counts as
    /// a TCP failure, an idle stall as a timeout), although its status was 200.
    @Test func aStreamThatBreaksMidWayIsAPassiveFailure() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let events = Array(FakeLLM.chatStream(model: "model-a", words: ["Hel"], includeUsage: false).prefix(2))
            f.a.reply { _ in .sse(events: events, end: .cut, gateAfter: events.count) }
            let passive = #","checks":{"passive":{"unhealthy":{"tcp_failures":1},"cooldown":60}}"#
            let a = f.instance("a", f.a, model: "model-a", extra: #","priority":1"# + passive)
            try await f.route(#"{"instances":[\#(a),\#(f.instance("b", f.b, model: "model-b"))]}"#)
            let broken = try await f.gw.streamOpeningGate(of: f.a, after: "Hel", body: streamBody)
            #expect(broken.status == 200 && dataLines(broken.body).last?.contains("stream_broken") == true)
            let node = try #require(try await f.gw.healthNode("a"))
            #expect(node["status"] == "unhealthy" && node["passive"] == "ejected", "\(node)")
            for _ in 0..<3 { #expect(try await f.chat().json["model"] == "model-b") }
            #expect(f.a.requests.count == 1)
        }
    }

    /// A 429's Retry-After cools the instance down for that long: a burst sent meanwhile goes
    /// elsewhere (30 s: far longer than any burst takes), and the instance comes back after it
    /// (1 s, on a second route).
    @Test func retryAfterCoolsAnInstanceDown() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .json(status: 429, body: "slow down", headers: [("Retry-After", "30")]) }
            let listed = #","checks":{"passive":{}}"#
            let sent = Date().timeIntervalSince1970
            try await f.route(
                #"{"fallback_strategy":["http_429"],"instances":[\#(f.instance("a", f.a, model: "model-a", extra: listed)),\#(f.instance("b", f.b, model: "model-b"))]}"#
            )
            for _ in 0..<5 { #expect((try await f.chat()).json["model"] == "model-b") }
            #expect(f.a.requests.count == 1)
            let until = try #require(try await f.gw.healthNode("a")?["cooldown_until"]?.doubleValue)
            #expect(until >= sent + 29 && until <= Date().timeIntervalSince1970 + 30.5, "cooldown until \(until)")

            // A second route whose a answers 429 with Retry-After 1 once, then works.
            let calls = Counter()
            f.a.reply { _ in
                calls.next() == 0
                    ? .json(status: 429, body: "slow down", headers: [("Retry-After", "1")])
                    : .json(status: 200, body: FakeLLM.completion(model: "model-a"))
            }
            try await f.route(
                #"{"fallback_strategy":["http_429"],"instances":[\#(f.instance("a", f.a, model: "model-a", extra: listed)),\#(f.instance("b", f.b, model: "model-b"))]}"#,
                uri: "/again", id: "again")
            let again = {
                try await f.gw.proxy(.POST, "/again", body: mathBody, headers: [("Content-Type", "application/json")])
            }
            #expect(try await again().json["model"] == "model-b")
            #expect(try await eventually { try await again().json["model"] == "model-a" })
        }
    }

    @Test func checkersStopWithTheirRoute() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            probed(f.b, up: Flag(true))
            let checks = #","checks":{"active":{"http_path":"/health","healthy":{"interval":1}}}"#
            try await f.route(#"{"instances":[\#(f.instance("a", f.a)),\#(f.instance("b", f.b, extra: checks))]}"#)
            #expect(await eventually { f.b.requests.contains { $0.path == "/health" } })
            #expect(f.gw.gateway.health.runningCheckers == 1)
            // A config change replaces the checker; it never adds one.
            #expect((try await f.gw.admin(.PATCH, "/routes/ai", #"{"desc":"changed"}"#)).status == 200)
            #expect(f.gw.gateway.health.runningCheckers == 1)
            let unknown = try await HTTP.send(.GET, f.gw.controlBase + "/v1/healthcheck/routes/nope")
            #expect(unknown.status == 404)
            #expect((try await f.gw.admin(.DELETE, "/routes/ai")).status == 200)
            #expect(f.gw.gateway.health.runningCheckers == 0)
            #expect(try await f.gw.control() == [])
            let probes = f.b.requests.count
            // Two probe intervals later nothing has probed again (absence has no event to await).
            try await Task.sleep(for: .milliseconds(2200))
            #expect(f.b.requests.count == probes)
        }
    }
}

@Suite struct HealthStateTests {
    @Test func activeThresholds() {
        var s = HealthState()
        var changes: [HealthState.Change?] = []
        for _ in 0..<3 { changes.append(s.probeFailed(.http, threshold: 3)) }
        #expect(changes == [nil, nil, .becameUnhealthy("3 http failures in a row")])
        #expect(!s.isAvailable(now: 0, activeChecked: true))
        let first = s.probeSucceeded(threshold: 2)
        let second = s.probeSucceeded(threshold: 2)
        #expect(first == nil && second == .becameHealthy)
        #expect(s.isAvailable(now: 0, activeChecked: true))
    }

    @Test func passiveEjectionAndSingleTrial() {
        var s = HealthState()
        var passive = HealthCheckConfig.Passive()
        passive.httpFailures = 2
        passive.cooldown = 10
        let c1 = s.liveFailed(.http, config: passive, now: 0)
        let c2 = s.liveFailed(.http, config: passive, now: 0)
        #expect(c1 == nil && c2 == .becameUnhealthy("2 live http failures in a row"))
        #expect(s.passive == .ejected)
        let early = s.admit(now: 5, activeChecked: false)
        let trial = s.admit(now: 11, activeChecked: false)
        let second = s.admit(now: 11, activeChecked: false)
        #expect(!early && trial && !second)  // exactly one trial once the cooldown is over
        #expect(s.passive == .halfOpen)
        let failedTrial = s.liveFailed(.tcp, config: passive, now: 11)
        #expect(failedTrial == nil)  // a failed trial rests again
        let resting = s.admit(now: 12, activeChecked: false)
        let nextTrial = s.admit(now: 22, activeChecked: false)
        #expect(!resting && nextTrial)
        let recovered = s.liveSucceeded(config: passive)
        #expect(recovered == .becameHealthy)
        #expect(s.passive == .ok)
    }

    @Test func retryHints() {
        #expect(AIProxyHandler.parseGoDuration("6m0s") == 360)
        #expect(AIProxyHandler.parseGoDuration("1h2m3.5s") == 3723.5)
        #expect(AIProxyHandler.parseGoDuration("20ms") == 0.02)
        #expect(AIProxyHandler.parseGoDuration("soon") == nil)
    }
}

@Suite struct SeedHealthExampleTests {
    @Test func theSeedsActiveHealthCheckRouteIsAcceptedAndChecked() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let route = """
                {
                "id": "ai-proxy-multi-route",
                "uri": "/anything",
                "methods": ["POST"],
                "plugins": {
                "ai-proxy-multi": {
                "instances": [
                {
                "name": "llm-instance-1",
                "provider": "openai-compatible",
                "weight": 0,
                "auth": {"header": {"Authorization": "Bearer key"}},
                "options": {"model": "my-model"}
                },
                {
                "name": "llm-instance-2",
                "provider": "openai-compatible",
                "weight": 0,
                "auth": {"header": {"Authorization": "Bearer key"}},
                "options": {"model": "my-model"},
                "checks": {
                "active": {
                "type": "https",
                "host": "yourhost.com",
                "http_path": "/your/probe/path",
                "healthy": {"interval": 2, "successes": 1},
                "unhealthy": {"interval": 1, "http_failures": 3}
                }
                }
                }
                ]
                }
                }
                }
                """
            let created = try await gw.admin(.PUT, "/routes", route)
            #expect(created.status == 201)
            #expect(
                created.json["value"]?["plugins"]?["ai-proxy-multi"]?["instances"]?[1]?["checks"]?["active"]?["timeout"]
                    == 1)
            let list = try await HTTP.send(.GET, gw.controlBase + "/v1/healthcheck/routes/ai-proxy-multi-route").json
            #expect(list.arrayValue?.count == 1)
            #expect(list[0]?["name"] == "/apisix/routes/ai-proxy-multi-route#instances[1]")
            #expect(list[0]?["instance"] == "llm-instance-2" && list[0]?["type"] == "https")
            #expect(list[0]?["nodes"]?[0]?["host"] == "yourhost.com")
            #expect(gw.gateway.health.runningCheckers == 1)
        }
    }
}

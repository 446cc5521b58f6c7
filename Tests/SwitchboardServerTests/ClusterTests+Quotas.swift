import Foundation
import Logging
import NIOHTTP1
import SwitchboardCore
import SwitchboardStore
import Testing

/// `ai-rate-limiting` with `policy: cluster`: one set of counters for every node.
extension ClusterTests {
    /// One instance on `llm` (model `m`) limited by `limiting`.
    static func quotaRoute(_ llm: FakeLLM, _ limiting: String) -> String {
        """
        {"uri":"/chat","plugins":{
          "ai-proxy-multi":{"instances":[{"name":"llm","provider":"openai","weight":1,"auth":{},
            "options":{"model":"m"},"override":{"endpoint":"\(llm.endpoint)"}}]},
          "ai-rate-limiting":\(limiting)}}
        """
    }

    /// Reserves 11 tokens (1 of prompt: "hi" is 2 bytes; 10 of `max_tokens`); the fake answers
    /// with a usage of 10, so no request costs more than it reserved.
    static let tenTokens = #"{"max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#

    /// A fake LLM whose every answer uses 10 tokens (5 + 5).
    func tenTokenLLM(_ fx: Fixtures, name: String = "llm") async throws -> FakeLLM {
        let llm = try await fx.own(FakeLLM.start(name: name))
        llm.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "m", usage: (5, 5))) }
        return llm
    }

    func chat(_ gateway: TestGateway) async throws -> HTTPResult {
        try await gateway.proxy(.POST, "/chat", body: Self.tenTokens, headers: [("Content-Type", "application/json")])
    }

    /// `consumed/reserved` of every counter window, summed, as the database holds them. The
    /// database is the test's own, so every window is the test's; the database aligns windows to
    /// multiples of their length, so counting only unexpired ones read 0/0 whenever a test
    /// crossed a window's end (seen here at a minute boundary). The tests' windows are an hour
    /// long for the same reason: requests on both sides of a boundary would be admitted twice.
    func counted(_ dsn: PostgresDSN) async throws -> String? {
        try await TestPostgres.value(
            on: dsn,
            """
            SELECT coalesce(sum(consumed), 0) || '/' || coalesce(sum(reserved), 0) FROM switchboard_quota_windows
            """)
    }

    /// Waits for the database's counters to read `expected` (settlements are sent in the
    /// background), and says what they read instead.
    func expectCounted(
        _ dsn: PostgresDSN, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        var last: String?
        let reached = try await eventually {
            last = try await counted(dsn)
            return last == expected
        }
        #expect(reached, "the counters read \(last ?? "nothing"), not \(expected)", sourceLocation: sourceLocation)
    }

    /// Two nodes on a fresh database, `route` written through the first and known to the second.
    func twoNodes(_ fx: Fixtures, serving route: String) async throws -> (PostgresDSN, TestGateway, TestGateway) {
        let dsn = try await TestPostgres.freshDatabase()
        let a = try await node(fx, dsn)
        let b = try await node(fx, dsn)
        try #require((try await a.admin(.PUT, "/routes/chat", route)).status == 201)
        #expect(try await eventually { try await b.admin(.GET, "/routes/chat").status == 200 })
        return (dsn, a, b)
    }

    @Test func aQuotaSpentThroughOneNodeIsEnforcedOnAnother() async throws {
        try await withFixture { fx in
            let llm = try await tenTokenLLM(fx)
            let route = Self.quotaRoute(llm, #"{"policy":"cluster","limit":30,"time_window":3600}"#)
            let (dsn, a, b) = try await twoNodes(fx, serving: route)

            for _ in 0..<3 { #expect(try await chat(a).status == 200) }
            let refused = try await chat(b)
            #expect(refused.status == 503)
            #expect(refused.headers.first(name: "x-ai-ratelimit-remaining-llm") == "0")
            #expect(refused.json["error"]?["code"] == "quota_exceeded")
            #expect(llm.requests.count == 3)
            // Every reservation was settled with what the request used.
            try await expectCounted(dsn, "30/0")
        }
    }

    /// Real processes: 40 requests at once, spread over three nodes, against a quota of 100
    /// tokens and requests of 10. One node would admit exactly 10 (the 10th sees at most 99 spent
    /// or promised); so must the three together. With per-node counters they would admit 30.
    @Test func fortyConcurrentRequestsOverThreeNodesStayWithinTheBound() async throws {
        try await withFixture { fx in
            let dsn = try await TestPostgres.freshDatabase()
            let llm = try await tenTokenLLM(fx)
            let nodes = try await processNodes(fx, dsn, count: 3)
            let admin = { (node: ProcessNode, method: HTTPMethod, body: String?) in
                try await HTTP.send(
                    method, "http://127.0.0.1:\(node.admin)/apisix/admin/routes/chat", body: body,
                    headers: [("X-API-KEY", "k")])
            }
            let route = Self.quotaRoute(llm, #"{"policy":"cluster","limit":100,"time_window":3600}"#)
            try #require((try await admin(nodes[0], .PUT, route)).status == 201)
            for node in nodes { #expect(try await eventually { try await admin(node, .GET, nil).status == 200 }) }

            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<40 {
                    let node = nodes[i % 3]
                    group.addTask {
                        try await HTTP.send(
                            .POST, "http://127.0.0.1:\(node.proxy)/chat", body: Self.tenTokens,
                            headers: [("Content-Type", "application/json")]
                        ).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 }.count == 10, "\(statuses)")
            #expect(statuses.filter { $0 == 503 }.count == 30, "\(statuses)")
            #expect(llm.requests.count == 10)
            try await expectCounted(dsn, "100/0")
        }
    }

    /// `allow_degradation` decides what a request gets while the database is unreachable:
    /// `false` fails closed (503, the provider is not called), `true` fails open (this node
    /// counts alone). Both count in the cluster again once it is back.
    @Test(arguments: [false, true])
    func anUnreachableDatabaseFailsClosedOrOpen(allowDegradation: Bool) async throws {
        try await withFixture { fx in
            let dsn = try await TestPostgres.freshDatabase()
            let a = try await node(fx, dsn)
            let llm = try await tenTokenLLM(fx)
            let limiting =
                #"{"policy":"cluster","limit":1000,"time_window":3600,"allow_degradation":\#(allowDegradation)}"#
            try #require((try await a.admin(.PUT, "/routes/chat", Self.quotaRoute(llm, limiting))).status == 201)
            #expect(try await chat(a).status == 200)

            try await TestPostgres.refuseConnections(to: dsn)
            let during = try await chat(a)
            if allowDegradation {
                #expect(during.status == 200)
                #expect(llm.requests.count == 2)
            } else {
                #expect(during.status == 503)
                let message = during.json["error_msg"]?.stringValue ?? ""
                #expect(message.hasPrefix("quota store unavailable: "), "\(during.body)")
                #expect(llm.requests.count == 1)
            }

            try await TestPostgres.allowConnections(to: dsn)
            // Until the node reconnects, requests fail closed or count on the node; then the
            // cluster counts them again.
            let recovered = try await eventually {
                let status = try await chat(a).status
                let seen = try await counted(dsn)
                return status == 200 && seen != "10/0"
            }
            #expect(recovered)
            try await expectCounted(dsn, "20/0")
            if allowDegradation {
                #expect(llm.requests.count >= 3)
            } else {
                #expect(llm.requests.count == 2)
            }
        }
    }

    /// With `sync_interval`, a node admits against its last view of the cluster and sends its
    /// usage in batches: another node sees it after the next sync and refuses.
    @Test func aBatchingNodesUsageReachesTheOthers() async throws {
        try await withFixture { fx in
            let llm = try await tenTokenLLM(fx)
            let limiting = #"{"policy":"cluster","limit":30,"time_window":3600,"sync_interval":50}"#
            let (dsn, a, b) = try await twoNodes(fx, serving: Self.quotaRoute(llm, limiting))

            for _ in 0..<3 { #expect(try await chat(a).status == 200) }
            #expect(try await chat(a).status == 503, "node A's own lease holds its usage")
            try await expectCounted(dsn, "30/0")
            #expect(try await eventually { try await chat(b).status == 503 })
            #expect(llm.requests.count == 3)
        }
    }

    /// `fallback_strategy: rate_limiting` picks by the cluster's counters: an instance whose
    /// quota node A spent is skipped by node B.
    @Test func pickingByQuotaUsesTheClustersCounters() async throws {
        try await withFixture { fx in
            let first = try await tenTokenLLM(fx, name: "first")
            let second = try await tenTokenLLM(fx, name: "second")
            let instance = { (name: String, llm: FakeLLM, priority: Int) in
                #"{"name":"\#(name)","provider":"openai","weight":1,"priority":\#(priority),"auth":{},"options":{"model":"\#(name)"},"override":{"endpoint":"\#(llm.endpoint)"}}"#
            }
            let route = """
                {"uri":"/chat","plugins":{
                  "ai-proxy-multi":{"fallback_strategy":["rate_limiting"],"instances":[
                    \(instance("first", first, 1)),\(instance("second", second, 0))]},
                  "ai-rate-limiting":{"policy":"cluster","instances":[{"name":"first","limit":10,"time_window":3600}]}}}
                """
            let (_, a, b) = try await twoNodes(fx, serving: route)

            #expect(try await chat(a).status == 200)
            #expect(first.requests.count == 1)
            let picked = try await chat(b)
            #expect(picked.status == 200)
            #expect(picked.headers.first(name: "x-ai-ratelimit-remaining-first") == "0")
            #expect(first.requests.count == 1 && second.requests.count == 1, "node B picked the spent instance")
        }
    }

    /// Windows that ended more than a minute ago are deleted; current ones are kept.
    /// A batch sent again (its first answer was lost, though the database applied it) is
    /// applied once: the second call changes nothing and answers no windows.
    @Test func aBatchSentTwiceIsAppliedOnce() async throws {
        let dsn = try await TestPostgres.freshDatabase()
        let store = try await PostgresConfigStore.open(dsn, logger: Logger(label: "test"))
        let (admitted, window) = try await store.reserve(
            "k", window: QuotaWindow(limit: 100, seconds: 60), estimate: 11)
        #expect(admitted)
        let settle = [QuotaDelta(key: "k", windowStart: window.windowStart, reserved: -11, consumed: 7)]
        let first = try await store.apply(settle, batch: "node-1")
        #expect(first.map { "\($0.consumed)/\($0.reserved)" } == ["7/0"])
        #expect(try await store.apply(settle, batch: "node-1").isEmpty)
        #expect(try await counted(dsn) == "7/0")
        _ = try await store.apply(settle, batch: "node-2")  // another batch counts
        #expect(try await counted(dsn) == "14/0")
        try await store.close()
    }

    @Test func expiredWindowsAreRemoved() async throws {
        let dsn = try await TestPostgres.freshDatabase()
        let store = try await PostgresConfigStore.open(dsn, logger: Logger(label: "test"))
        let window = QuotaWindow(limit: 100, seconds: 60)
        _ = try await store.reserve("current", window: window, estimate: 5)
        try await TestPostgres.run(
            on: dsn,
            """
            INSERT INTO switchboard_quota_windows (counter, window_start, expires_at, consumed)
            VALUES ('old', 60, 120, 7)
            """)
        try await TestPostgres.run(
            on: dsn, "INSERT INTO switchboard_quota_batches (id, expires_at) VALUES ('old', 120), ('new', 9999999999)")
        try await store.removeExpiredWindows()
        #expect(
            try await TestPostgres.value(on: dsn, "SELECT string_agg(counter, ',') FROM switchboard_quota_windows")
                == "current")
        #expect(
            try await TestPostgres.value(on: dsn, "SELECT string_agg(id, ',') FROM switchboard_quota_batches") == "new")
        try await store.close()
    }
}

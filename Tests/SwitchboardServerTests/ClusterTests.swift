import Foundation
import NIOHTTP1
import SwitchboardCore
import SwitchboardStore
import Testing

/// Several gateway nodes on one PostgreSQL database (`store: postgres://...`): what one node's
/// Admin API writes, every node serves. Each test gets a database of its own on the server that
/// `scripts/test.sh` starts.
@Suite(
    .enabled(if: TestPostgres.isAvailable, "needs the PostgreSQL server scripts/test.sh starts"),
    .serialized  // one test restarts the shared server
)
struct ClusterTests {
    /// A gateway node on `dsn`, catching up every `catchUp` (the default is 5 s).
    func node(_ fx: Fixtures, _ dsn: PostgresDSN, keys: Bool = true) async throws -> TestGateway {
        try await fx.own(
            TestGateway.start { config, _ in
                config.store = .postgres(dsn)
                if !keys { config.adminKeys = [] }
            })
    }

    static let mock = #"{"uri":"/m","plugins":{"mocking":{"response_example":"v1"}}}"#

    /// A gateway node as a process of its own (`switchboard serve`), admin key `k`.
    struct ProcessNode {
        var running: CommandLineTests.Running
        var proxy: Int
        var admin: Int
        var control: Int
    }

    /// `count` real gateway processes on `dsn`, each answering its Admin API.
    func processNodes(_ fx: Fixtures, _ dsn: PostgresDSN, count: Int) async throws -> [ProcessNode] {
        var nodes: [ProcessNode] = []
        for index in 0..<count {
            let directory = TestGateway.makeDirectory()
            let (proxy, admin) = (try CommandLineTests.freePort(), try CommandLineTests.freePort())
            let control = try CommandLineTests.freePort()
            let config = directory.appendingPathComponent("node\(index).yaml")
            try """
            store: postgres://\(dsn.user)@\(dsn.host):\(dsn.port)/\(dsn.database)
            proxy: {listen: "127.0.0.1:\(proxy)"}
            admin: {listen: "127.0.0.1:\(admin)", keys: [{key: k}]}
            control: {listen: "127.0.0.1:\(control)"}
            prometheus: {enabled: false}
            access_log: {path: "off"}
            """.write(to: config, atomically: true, encoding: .utf8)
            let running = fx.own(
                try CommandLineTests.Running(["serve", "--config", config.path], directory: directory))
            try #require(await CommandLineTests.waitForAdmin(admin, key: "k"), "\(running.stderr)")
            nodes.append(ProcessNode(running: running, proxy: proxy, admin: admin, control: control))
        }
        return nodes
    }

    /// A fresh database, two nodes on it, and `mock` written through the first and served by
    /// the second.
    func twoNodesServingTheMock(_ fx: Fixtures) async throws -> (PostgresDSN, TestGateway, TestGateway) {
        let dsn = try await TestPostgres.freshDatabase()
        let a = try await node(fx, dsn)
        let b = try await node(fx, dsn)
        try #require((try await a.admin(.PUT, "/routes/m", Self.mock)).status == 201)
        try #require(try await eventually { try await b.proxy(.GET, "/m").body == "v1" })
        return (dsn, a, b)
    }

    /// Nodes sharing a keyring: what one writes sealed, the other opens and serves; the
    /// database never holds the provider key in clear.
    @Test func sealedSecretsAreSharedByNodesWithTheKeyring() async throws {
        try await withFixture { fx in
            let dsn = try await TestPostgres.freshDatabase()
            let keyring = [GatewayConfig.hexBytes(String(repeating: "5a", count: 32)) ?? []]
            func sealedNode() async throws -> TestGateway {
                try await fx.own(
                    TestGateway.start { config, _ in
                        config.store = .postgres(dsn)
                        config.dataEncryptionKeys = keyring
                    })
            }
            let a = try await sealedNode()
            let b = try await sealedNode()
            let llm = try await fx.own(FakeLLM.start(name: "llm"))
            llm.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "m")) }
            let route = """
                {"uri":"/chat","plugins":{"ai-proxy-multi":{"instances":[{"name":"x","provider":"openai","weight":1,
                 "auth":{"header":{"Authorization":"Bearer sk-cluster-999"}},"override":{"endpoint":"\(llm.endpoint)"}}]}}}
                """
            #expect(try await a.admin(.PUT, "/routes/chat", route).status == 201)
            let served = try await eventually {
                try await b.proxy(
                    .POST, "/chat", body: #"{"messages":[{"role":"user","content":"hi"}]}"#,
                    headers: [("Content-Type", "application/json")]
                ).status == 200
            }
            #expect(served)
            #expect(llm.requests.last?.headers[.authorization] == "Bearer sk-cluster-999")
            let stored = try await TestPostgres.value(
                on: dsn, "SELECT value FROM switchboard_resources WHERE kind = 'routes' AND id = 'chat'")
            #expect(stored?.contains("$aes-gcm$") == true)
            #expect(stored?.contains("sk-cluster-999") == false)
        }
    }

    @Test func aWriteOnOneNodeIsServedByTheOther() async throws {
        try await withFixture { fx in
            let (_, a, b) = try await twoNodesServingTheMock(fx)
            // B's Admin API reads what A wrote, with the same envelope.
            let read = try await b.admin(.GET, "/routes/m")
            #expect(read.status == 200 && read.json["value"]?["uri"] == "/m")

            let update = #"{"uri":"/m","plugins":{"mocking":{"response_example":"v2"}}}"#
            #expect((try await b.admin(.PUT, "/routes/m", update)).status == 200)
            #expect(try await eventually { try await a.proxy(.GET, "/m").body == "v2" })

            #expect((try await a.admin(.DELETE, "/routes/m")).status == 200)
            #expect(try await eventually { try await b.proxy(.GET, "/m").status == 404 })
        }
    }

    /// Writes are checked against the cluster's configuration, not a node's possibly older copy:
    /// a route another node just created (here: written behind the node's back, before any
    /// notification) keeps this node from deleting the upstream it uses.
    @Test func aWriteIsValidatedAgainstTheClustersLatestConfiguration() async throws {
        try await withFixture { fx in
            let dsn = try await TestPostgres.freshDatabase()
            let a = try await node(fx, dsn)
            try #require((try await a.admin(.PUT, "/upstreams/u1", #"{"nodes":{"127.0.0.1:1":1}}"#)).status == 201)
            // One statement, as a node's write is one transaction: a catch-up between a bare
            // revision bump and the row would load the bumped revision without the route.
            try await TestPostgres.run(
                on: dsn,
                """
                WITH bumped AS (UPDATE switchboard_revision SET revision = revision + 1 RETURNING revision)
                INSERT INTO switchboard_resources (kind, id, value, created_index, modified_index, revision)
                SELECT 'routes', 'r1', '{"id":"r1","uri":"/r1","upstream_id":"u1"}', 100, 100, revision FROM bumped
                """)
            let refused = try await a.admin(.DELETE, "/upstreams/u1")
            #expect(refused.status == 400, "\(refused.body)")
            #expect(refused.json["error_msg"] == "can not delete this upstream, route [r1] is still using it now")
            #expect(try await a.admin(.GET, "/routes/r1").status == 200)
        }
    }

    /// POST ids come from the database: two nodes creating at once never hand out the same one.
    @Test func postsOnTwoNodesAtOnceGetDistinctIDs() async throws {
        try await withFixture { fx in
            let dsn = try await TestPostgres.freshDatabase()
            let a = try await node(fx, dsn)
            let b = try await node(fx, dsn)
            let ids = try await withThrowingTaskGroup(of: String?.self) { group in
                for i in 0..<20 {
                    let gateway = i % 2 == 0 ? a : b
                    group.addTask {
                        let created = try await gateway.admin(.POST, "/upstreams", #"{"nodes":{"127.0.0.1:1":1}}"#)
                        return created.status == 201 ? created.json["value"]?["id"]?.stringValue : nil
                    }
                }
                var ids: [String?] = []
                for try await id in group { ids.append(id) }
                return ids
            }
            #expect(ids.allSatisfy { $0 != nil })
            #expect(Set(ids.compactMap { $0 }).count == 20)
            for gateway in [a, b] {
                #expect(
                    try await eventually { try await gateway.admin(.GET, "/upstreams").json["total"] == 20 })
            }
        }
    }

    /// Nodes started together without configured admin keys agree on one generated key.
    @Test func theGeneratedAdminKeyIsOneForTheCluster() async throws {
        try await withFixture { fx in
            let dsn = try await TestPostgres.freshDatabase()
            async let first = node(fx, dsn, keys: false)
            async let second = node(fx, dsn, keys: false)
            let (a, b) = try await (first, second)
            let key = try #require(
                try await TestPostgres.value(on: dsn, "SELECT value FROM switchboard_meta WHERE key = 'admin_key'"))
            #expect(key.count == 64)
            for gateway in [a, b] {
                #expect((try await gateway.admin(.GET, "/routes", key: key)).status == 200)
            }
        }
    }

    /// The database goes away: the node keeps serving what it has, refuses writes with 503 and
    /// changes nothing; when the database is back, writes work again.
    @Test func aDatabaseOutageKeepsServingAndRefusesWrites() async throws {
        try await withFixture { fx in
            let dsn = try await TestPostgres.freshDatabase()
            let a = try await node(fx, dsn)
            try #require((try await a.admin(.PUT, "/routes/m", Self.mock)).status == 201)
            try await TestPostgres.refuseConnections(to: dsn)
            #expect(try await a.proxy(.GET, "/m").body == "v1")
            // Reads answer from the node's copy and say so.
            #expect(
                try await eventually {
                    try await a.admin(.GET, "/routes/m").headers.first(name: "x-switchboard-stale") == "true"
                })
            #expect(try await a.admin(.GET, "/routes/m").json["value"]?["uri"] == "/m")
            let refused = try await a.admin(
                .PUT, "/routes/n", #"{"uri":"/n","plugins":{"mocking":{"response_example":"n"}}}"#)
            #expect(refused.status == 503, "\(refused.body)")
            #expect(
                refused.json["error_msg"]?.stringValue?.hasPrefix("configuration store unavailable: ") == true,
                "\(refused.body)")
            #expect((try await a.proxy(.GET, "/n")).status == 404)
            #expect(try await a.proxy(.GET, "/m").body == "v1")
            try await TestPostgres.allowConnections(to: dsn)
            #expect(
                try await eventually {
                    try await a.admin(
                        .PUT, "/routes/n", #"{"uri":"/n","plugins":{"mocking":{"response_example":"n"}}}"#
                    ).status == 201
                })
            #expect(try await TestPostgres.value(on: dsn, "SELECT count(*)::text FROM switchboard_resources") == "2")
            #expect(
                try await eventually {
                    try await a.admin(.GET, "/routes/m").headers.first(name: "x-switchboard-stale") == nil
                })
        }
    }

    /// A node started while the database refuses connections waits for it, then starts with the
    /// cluster's configuration (never with an empty one).
    @Test func aNodeStartedDuringAnOutageWaitsForTheDatabase() async throws {
        try await withFixture { fx in
            let dsn = try await TestPostgres.freshDatabase()
            let a = try await node(fx, dsn)
            try #require((try await a.admin(.PUT, "/routes/m", Self.mock)).status == 201)
            try await TestPostgres.refuseConnections(to: dsn)
            let started = Flag(false)
            let starting = Task {
                defer { started.set(true) }
                return try await self.node(fx, dsn)
            }
            // Nothing to await while the node retries: give it time to try, and check it has not
            // started (it would be serving without a configuration).
            try await Task.sleep(for: .milliseconds(800))
            #expect(!started.isOn)
            try await TestPostgres.allowConnections(to: dsn)
            let b = try await starting.value
            #expect(try await b.proxy(.GET, "/m").body == "v1")
        }
    }

    /// The store's name in logs and errors never carries the password.
    @Test func theDSNPasswordIsNeverShown() async throws {
        let dsn = try PostgresDSN("postgres://switchboard:hunter2@127.0.0.1:1/cluster")
        #expect(dsn.redacted == "postgres://switchboard:***@127.0.0.1:1/cluster?sslmode=disable")
        do {
            let store = try await PostgresConfigStore.open(
                dsn, logger: quietLogger, startupTimeout: .milliseconds(300))
            try await store.close()
            Issue.record("opened a store on a closed port")
        } catch {
            #expect("\(error)".contains("postgres://switchboard:***@127.0.0.1:1/cluster"), "\(error)")
            #expect(!"\(error)".contains("hunter2"))
        }
        // A mistyped scheme is not echoed with what follows it either.
        #expect(throws: GatewayConfig.Error.self) { try GatewayConfig.parse("store: postgress://u:hunter2@h/db") }
        do { _ = try GatewayConfig.parse("store: postgress://u:hunter2@h/db") } catch {
            #expect(!"\(error)".contains("hunter2"), "\(error)")
        }
    }

    /// `GET /v1/cluster`: every node with its revision; a node that leaves cleanly is gone.
    @Test func theControlAPIListsTheNodes() async throws {
        try await withFixture { fx in
            let dsn = try await TestPostgres.freshDatabase()
            let a = try await node(fx, dsn)
            let b = try await node(fx, dsn)
            try #require((try await a.admin(.PUT, "/routes/m", Self.mock)).status == 201)
            let listed = try await eventually {
                let view = try await a.control("/v1/cluster")
                let nodes = view["nodes"]?.arrayValue ?? []
                return nodes.count == 2
                    && nodes.allSatisfy { $0["revision"] == view["revision"] && $0["behind"] == false }
            }
            #expect(listed)
            let view = try await a.control("/v1/cluster")
            #expect(view["cluster"] == true && view["revision"] == 1)
            #expect(view["store"]?.stringValue?.hasPrefix("postgres://postgres@127.0.0.1:") == true)
            #expect(view["nodes"]?.arrayValue?.filter { $0["self"] == true }.count == 1)
            await b.stop()
            #expect(try await eventually { try await a.control("/v1/cluster")["nodes"]?.arrayValue?.count == 1 })
        }
    }

    /// A 429 cooldown and a breaker opening on node A reach node B, which then keeps away from
    /// that instance without trying it itself.
    @Test(arguments: ["cooldown", "breaker"])
    func failureKnowledgeIsShared(kind: String) async throws {
        try await withFixture { fx in
            let dsn = try await TestPostgres.freshDatabase()
            let a = try await node(fx, dsn)
            let b = try await node(fx, dsn)
            let failing = try await fx.own(FakeLLM.start(name: "failing"))
            let working = try await fx.own(FakeLLM.start(name: "working"))
            failing.reply { _ in
                kind == "cooldown"
                    ? .json(status: 429, body: #"{"error":{"message":"slow down"}}"#, headers: [("Retry-After", "30")])
                    : .json(status: 503, body: "down")
            }
            let instance = { (name: String, llm: FakeLLM, extra: String) in
                #"{"name":"\#(name)","provider":"openai","weight":1,"auth":{},"options":{"model":"\#(name)"},"override":{"endpoint":"\#(llm.endpoint)"}\#(extra)}"#
            }
            let plugin =
                kind == "cooldown"
                ? #""fallback_strategy":["http_429"],"#
                : #""fallback_strategy":["http_5xx"],"breaker":{"failures":1,"open_ms":30000},"#
            let route = """
                {"uri":"/chat","plugins":{"ai-proxy-multi":{\(plugin)"instances":[
                \(instance("a", failing, #","priority":1,"checks":{"passive":{}}"#)),\(instance("b", working, ""))]}}}
                """
            try #require((try await a.admin(.PUT, "/routes/chat", route)).status == 201)
            #expect(try await eventually { try await b.admin(.GET, "/routes/chat").status == 200 })
            let chat = { (gateway: TestGateway) in
                try await gateway.proxy(.POST, "/chat", body: mathBody, headers: [("Content-Type", "application/json")])
            }
            #expect(try await chat(a).json["model"] == "b")
            #expect(failing.requests.count == 1)
            let learned = try await eventually {
                let node = try await b.healthNode("a")
                return kind == "cooldown" ? node?["cooldown_until"]?.doubleValue != nil : node?["breaker"] == "open"
            }
            #expect(learned)
            for _ in 0..<3 { #expect(try await chat(b).json["model"] == "b") }
            #expect(failing.requests.count == 1, "node B tried the instance node A had found failing")
        }
    }

    /// Real processes: `kill -9` of one node leaves the other serving, and every write the
    /// killed node acknowledged is there.
    @Test func killingOneNodeLosesNoAcknowledgedWrite() async throws {
        try await withFixture { fx in
            let dsn = try await TestPostgres.freshDatabase()
            let nodes = try await processNodes(fx, dsn, count: 2)
            let (a, b) = (nodes[0], nodes[1])
            for i in 0..<10 {
                let route = #"{"uri":"/r\#(i)","plugins":{"mocking":{"response_example":"r\#(i)"}}}"#
                let put = try await HTTP.send(
                    .PUT, "http://127.0.0.1:\(a.admin)/apisix/admin/routes/r\(i)", body: route,
                    headers: [("X-API-KEY", "k")])
                try #require(put.status == 201)
            }
            await a.running.kill(SIGKILL)
            #expect(
                try await eventually {
                    try await HTTP.send(.GET, "http://127.0.0.1:\(b.proxy)/r9").body == "r9"
                })
            let listed = try await HTTP.send(
                .GET, "http://127.0.0.1:\(b.admin)/apisix/admin/routes", headers: [("X-API-KEY", "k")])
            #expect(listed.json["total"] == 10)
            #expect(try await TestPostgres.value(on: dsn, "SELECT count(*)::text FROM switchboard_resources") == "10")
            // The killed node stops heartbeating and drops out of the cluster view (3 intervals).
            let alone = try await eventually {
                let view = try await HTTP.send(.GET, "http://127.0.0.1:\(b.control)/v1/cluster").json
                return view["nodes"]?.arrayValue?.count == 1 && view["nodes"]?[0]?["self"] == true
            }
            #expect(alone)
        }
    }

    /// The whole server restarted, then stopped for 5 s: nodes keep serving throughout, writes
    /// in the outage get 503, and afterwards every node converges on the same revision with
    /// nothing lost or doubled.
    @Test func theDatabaseRestartedAndStoppedForFiveSeconds() async throws {
        try await withFixture { fx in
            let (dsn, a, b) = try await twoNodesServingTheMock(fx)

            try await TestPostgres.pgCtl(["restart", "-m", "fast"])
            for gateway in [a, b] { #expect(try await gateway.proxy(.GET, "/m").body == "v1") }
            let route = { (n: Int) in #"{"uri":"/r\#(n)","plugins":{"mocking":{"response_example":"r\#(n)"}}}"# }
            #expect(try await eventually { try await b.admin(.PUT, "/routes/r1", route(1)).status == 201 })
            #expect(try await eventually { try await a.proxy(.GET, "/r1").body == "r1" })

            try await TestPostgres.pgCtl(["stop", "-m", "fast"])
            let refused = try await a.admin(.PUT, "/routes/r2", route(2))
            #expect(refused.status == 503, "\(refused.body)")
            for gateway in [a, b] { #expect(try await gateway.proxy(.GET, "/r1").body == "r1") }
            try await Task.sleep(for: .seconds(5))  // the outage itself
            for gateway in [a, b] { #expect(try await gateway.proxy(.GET, "/m").body == "v1") }
            try await TestPostgres.pgCtl(["start", "-l", "/dev/null"])

            #expect(try await eventually { try await a.admin(.PUT, "/routes/r3", route(3)).status == 201 })
            let converged = try await eventually {
                let view = try await b.control("/v1/cluster")
                let nodes = view["nodes"]?.arrayValue ?? []
                return nodes.count == 2 && nodes.allSatisfy { $0["revision"] == view["revision"] }
            }
            #expect(converged)
            for gateway in [a, b] {
                #expect(try await eventually { try await gateway.proxy(.GET, "/r3").body == "r3" })
                #expect(try await gateway.proxy(.GET, "/r2").status == 404)
                #expect(try await gateway.admin(.GET, "/routes").json["total"] == 3)
            }
            #expect(try await TestPostgres.value(on: dsn, "SELECT count(*)::text FROM switchboard_resources") == "3")
        }
    }
}

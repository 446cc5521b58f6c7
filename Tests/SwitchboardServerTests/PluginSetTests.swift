import Foundation
import NIOHTTP1
import SwitchboardCore
import Testing

/// Consumer groups, plugin configs and global rules through the Admin API and a real client,
/// with APISIX's merge order (consumer over group over route; route over plugin config) and
/// reference checks.
@Suite struct PluginSetTests {
    static let remaining = "x-ai-ratelimit-remaining-openai-instance"

    /// A route authenticating with key-auth in front of instance `a`, answering 5 + 5 tokens.
    func keyAuthRoute(_ f: AIFixture) async throws {
        f.a.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "m", usage: (5, 5))) }
        let route = """
            {"uri":"/anything","plugins":{"key-auth":{},
              "ai-proxy-multi":{"instances":[\(f.instance("openai-instance", f.a))]}}}
            """
        #expect(try await f.gw.admin(.PUT, "/routes/ai", route).status == 201)
    }

    func chat(_ f: AIFixture, key: String) async throws -> HTTPResult {
        try await f.chat(headers: [("apikey", key)])
    }

    /// `ai-rate-limiting` on a consumer group is one quota for all its members; a member's own
    /// `ai-rate-limiting` replaces the group's for that member.
    @Test func aGroupQuotaIsSharedByItsMembers() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            try await keyAuthRoute(f)
            let group = #"{"plugins":{"ai-rate-limiting":{"limit":30,"time_window":60}}}"#
            #expect(try await f.gw.admin(.PUT, "/consumer_groups/team", group).status == 201)
            for name in ["jack", "jane"] {
                let consumer =
                    #"{"username":"\#(name)","group_id":"team","plugins":{"key-auth":{"key":"\#(name)-key"}}}"#
                #expect(try await f.gw.admin(.PUT, "/consumers", consumer).status == 201)
            }
            let solo = """
                {"username":"solo","group_id":"team","plugins":{"key-auth":{"key":"solo-key"},
                 "ai-rate-limiting":{"limit":1000,"time_window":60}}}
                """
            #expect(try await f.gw.admin(.PUT, "/consumers", solo).status == 201)

            var seen: [String] = []
            for key in ["jack-key", "jack-key", "jane-key"] {
                let result = try await chat(f, key: key)
                #expect(result.status == 200)
                seen.append(result.headers.first(name: Self.remaining) ?? "-")
            }
            #expect(seen == ["30", "20", "10"], "one counter for the group")
            let rejected = try await chat(f, key: "jane-key")
            #expect(rejected.status == 503, "jane's share went to jack")
            let own = try await chat(f, key: "solo-key")
            #expect(own.status == 200)
            #expect(own.headers.first(name: Self.remaining) == "1000", "the consumer's plugin over the group's")
            #expect(f.a.requests.count == 4)
        }
    }

    @Test func groupReferencesAreChecked() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let orphan = try await gw.admin(.PUT, "/consumers", #"{"username":"jack","group_id":"nope"}"#)
            #expect(orphan.status == 400)
            #expect(
                orphan.json["error_msg"]
                    == "failed to fetch consumer group info by consumer group id [nope], response code: 404")
            let post = try await gw.admin(.POST, "/consumer_groups", #"{"plugins":{}}"#)
            #expect(post.status == 405)
            #expect(post.json["error_msg"] == "not supported `POST` method for consumer group")
            #expect(try await gw.admin(.PUT, "/consumer_groups/team", #"{"plugins":{}}"#).status == 201)
            #expect(try await gw.admin(.PUT, "/consumers", #"{"username":"jack","group_id":"team"}"#).status == 201)
            let inUse = try await gw.admin(.DELETE, "/consumer_groups/team")
            #expect(inUse.status == 400)
            #expect(
                inUse.json["error_msg"] == "can not delete this consumer group, consumer [jack] is still using it now")
            let missingPlugins = try await gw.admin(.PUT, "/consumer_groups/other", #"{"desc":"x"}"#)
            #expect(missingPlugins.status == 400)
            #expect(try await gw.admin(.DELETE, "/consumers/jack").status == 200)
            #expect(try await gw.admin(.DELETE, "/consumer_groups/team").status == 200)
        }
    }

    /// A route takes its plugins from a plugin config; its own plugin of the same name wins.
    @Test func aPluginConfigSuppliesARoutesPlugins() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let config = #"{"plugins":{"ai-proxy-multi":{"instances":[\#(f.instance("a", f.a))]}}}"#
            #expect(try await f.gw.admin(.PUT, "/plugin_configs/shared", config).status == 201)
            #expect(
                try await f.gw.admin(.PUT, "/routes/r1", #"{"uri":"/anything","plugin_config_id":"shared"}"#).status
                    == 201)
            #expect(try await f.chat().status == 200)
            #expect(f.a.requests.count == 1 && f.b.requests.isEmpty)

            let own = """
                {"uri":"/anything","plugin_config_id":"shared",
                 "plugins":{"ai-proxy-multi":{"instances":[\(f.instance("b", f.b))]}}}
                """
            #expect(try await f.gw.admin(.PUT, "/routes/r1", own).status == 200)
            #expect(try await f.chat().status == 200)
            #expect(f.a.requests.count == 1 && f.b.requests.count == 1, "the route's own plugin wins")

            // Changing the plugin config changes every route that uses it.
            #expect(
                try await f.gw.admin(.PUT, "/routes/r1", #"{"uri":"/anything","plugin_config_id":"shared"}"#).status
                    == 200)
            let moved = #"{"plugins":{"ai-proxy-multi":{"instances":[\#(f.instance("b", f.b))]}}}"#
            #expect(try await f.gw.admin(.PUT, "/plugin_configs/shared", moved).status == 200)
            #expect(try await f.chat().status == 200)
            #expect(f.b.requests.count == 2)

            let inUse = try await f.gw.admin(.DELETE, "/plugin_configs/shared")
            #expect(inUse.status == 400)
            #expect(inUse.json["error_msg"] == "can not delete this plugin config, route [r1] is still using it now")
            let dangling = try await f.gw.admin(.PUT, "/routes/r2", #"{"uri":"/x","plugin_config_id":"none"}"#)
            #expect(
                dangling.json["error_msg"]
                    == "failed to fetch plugin config info by plugin config id [none], response code: 404")
        }
    }

    /// A global rule's plugins run for every request, before the route's, and for requests no
    /// route matches.
    @Test func globalRulesRunForEveryRequest() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let route = #"{"uri":"/hello","plugins":{"mocking":{"response_example":"hi"}}}"#
            #expect(try await gw.admin(.PUT, "/routes/hello", route).status == 201)
            #expect(try await gw.proxy(.GET, "/hello").body == "hi")
            #expect(
                try await gw.admin(.PUT, "/consumers", #"{"username":"jack","plugins":{"key-auth":{"key":"jk"}}}"#)
                    .status == 201)
            #expect(try await gw.admin(.PUT, "/global_rules/1", #"{"plugins":{"key-auth":{}}}"#).status == 201)

            #expect(try await gw.proxy(.GET, "/hello").status == 401, "company-wide authentication")
            #expect(try await gw.proxy(.GET, "/unknown").status == 401, "before the 404")
            let allowed = try await gw.proxy(.GET, "/hello", headers: [("apikey", "jk")])
            #expect(allowed.status == 200 && allowed.body == "hi")
            #expect(try await gw.proxy(.GET, "/unknown", headers: [("apikey", "jk")]).status == 404)

            let twice = try await gw.admin(.PUT, "/global_rules/2", #"{"plugins":{"key-auth":{}}}"#)
            #expect(twice.status == 400)
            #expect(twice.json["error_msg"] == "plugin 'key-auth' already exists in global rule with id '1'")
            let list = try await gw.admin(.GET, "/global_rules")
            #expect(list.json["total"] == 1)
            #expect(try await gw.admin(.DELETE, "/global_rules/1").status == 200)
            #expect(try await gw.proxy(.GET, "/hello").status == 200)
        }
    }

    /// `:name` matches one segment and `*name` the rest; the values are `$uri_param_<name>`.
    @Test func pathParametersMatchAndAreVariables() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start(accessLog: .text("$uri $uri_param_id $uri_param_path")))
            for (id, uri) in [("user", "/users/:id"), ("posts", "/users/:id/posts"), ("files", "/files/*path")] {
                let route = #"{"uri":"\#(uri)","plugins":{"mocking":{"response_example":"\#(id)"}}}"#
                #expect(try await gw.admin(.PUT, "/routes/\(id)", route).status == 201)
            }
            let exact = #"{"uri":"/users/me","plugins":{"mocking":{"response_example":"me"}}}"#
            #expect(try await gw.admin(.PUT, "/routes/me", exact).status == 201)

            #expect(try await gw.proxy(.GET, "/users/42").body == "user")
            #expect(try await gw.proxy(.GET, "/users/42/posts").body == "posts")
            #expect(try await gw.proxy(.GET, "/users/me").body == "me", "an exact path beats a parameter")
            #expect(try await gw.proxy(.GET, "/users/42/other").status == 404)
            #expect(try await gw.proxy(.GET, "/files/a/b/c.txt").body == "files")
            let log = try await gw.finalAccessLog().split(separator: "\n")
            #expect(log.contains("/users/42 42 -"))
            #expect(log.contains("/files/a/b/c.txt - a/b/c.txt"))
        }
    }

    /// `name` and `uri` are regular expressions, `label` a label key, and `total` counts what
    /// the filters kept; `page` with `page_size` pages the result.
    @Test func adminListsFilterAndPage() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            for i in 1...12 {
                let label = i % 2 == 0 ? #","labels":{"team":"a"}"# : ""
                let route = """
                    {"uri":"/v\(i)/chat","name":"\(i <= 3 ? "chat" : "other")-\(i)"\(label),
                     "plugins":{"mocking":{"response_example":"x"}}}
                    """
                #expect(try await gw.admin(.PUT, "/routes/r\(i)", route).status == 201)
            }
            let byName = try await gw.admin(.GET, "/routes?name=%5Echat")
            #expect(byName.json["total"] == 3)
            #expect(byName.json["list"]?.arrayValue?.count == 3)
            #expect(try await gw.admin(.GET, "/routes?label=team").json["total"] == 6)
            let byURI = try await gw.admin(.GET, "/routes?uri=%5E/v1")
            #expect(byURI.json["total"] == 4, "v1, v10, v11, v12")
            let page = try await gw.admin(.GET, "/routes?page=2&page_size=10")
            #expect(page.json["total"] == 12)
            let ids = page.json["list"]?.arrayValue?.compactMap { $0["value"]?["id"]?.stringValue }
            #expect(ids == ["r11", "r12"])
            #expect(try await gw.admin(.GET, "/routes?page=1&page_size=5").status == 400)
            let bad = try await gw.admin(.GET, "/routes?name=(")
            #expect(bad.status == 400)
            // A pattern that backtracks exponentially is stopped, not left to pin a thread.
            let long =
                #"{"uri":"/slow","name":"\#(String(repeating: "a", count: 40))","plugins":{"mocking":{"response_example":"x"}}}"#
            #expect(try await gw.admin(.PUT, "/routes/slow", long).status == 201)
            let evil = try await within(10) { try await gw.admin(.GET, "/routes?name=%28%28a%2A%29%2A%29%2Ab") }
            #expect(evil.status == 400)
            #expect(evil.json["error_msg"]?.stringValue?.contains("took longer than") == true)
        }
    }
}

import Foundation
import NIOHTTP1
import SwitchboardCore
import Testing

@Suite struct DataPlaneTests {
    @Test func unmatchedRequestsGet404() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let result = try await gw.proxy(.GET, "/nothing")
            #expect(result.status == 404)
            #expect(result.json == ["error_msg": "404 Route Not Found"])
            #expect(result.headers.first(name: "x-request-id")?.count == 32)
        }
    }

    @Test func proxiesToUpstreamNodesByWeight() async throws {
        try await withFixture { fx in
            let a = try await fx.own(FakeUpstream.start(name: "a"))
            let b = try await fx.own(FakeUpstream.start(name: "b"))
            let gw = try await fx.own(TestGateway.start())
            let route = """
                {"uri":"/api/*","upstream":{"nodes":{"\(a.address)":8,"\(b.address)":2}}}
                """
            #expect((try await gw.admin(.PUT, "/routes/up", route)).status == 201)
            for i in 0..<10 {
                let result = try await gw.proxy(
                    .POST, "/api/items?x=\(i)&y=2", body: #"{"n":\#(i)}"#,
                    headers: [
                        ("Content-Type", "application/json"), ("X-Custom", "v\(i)"), ("X-Request-Id", "rid-\(i)"),
                    ])
                #expect(result.status == 200)
                #expect(result.headers.first(name: "x-request-id") == "rid-\(i)")
                let echo = result.json
                #expect(echo["path"] == "/api/items")
                #expect(echo["query"] == .string("x=\(i)&y=2"))
                #expect(echo["method"] == "POST")
                #expect(echo["body"] == .string(#"{"n":\#(i)}"#))
                #expect(echo["headers"]?["x-custom"] == .string("v\(i)"))
                #expect(echo["headers"]?["x-request-id"] == .string("rid-\(i)"))
                #expect(echo["headers"]?["x-forwarded-for"] == "127.0.0.1")
                #expect(result.headers.first(name: "x-upstream") == echo["upstream"]?.stringValue)
            }
            #expect(a.requests.count == 8)
            #expect(b.requests.count == 2)
        }
    }

    /// A client's X-Request-Id is kept up to 200 bytes; a longer one is replaced by a generated
    /// id, in the response and upstream alike.
    @Test func anOverLongRequestIdIsReplaced() async throws {
        try await withFixture { fx in
            let upstream = try await fx.own(FakeUpstream.start(name: "u"))
            let gw = try await fx.own(TestGateway.start())
            let route = #"{"uri":"/api/*","upstream":{"nodes":{"\#(upstream.address)":1}}}"#
            try #require((try await gw.admin(.PUT, "/routes/up", route)).status == 201)
            let longest = String(repeating: "r", count: 200)
            let kept = try await gw.proxy(.GET, "/api/a", headers: [("X-Request-Id", longest)])
            #expect(kept.headers.first(name: "x-request-id") == longest)
            #expect(kept.json["headers"]?["x-request-id"] == .string(longest))
            let replaced = try await gw.proxy(.GET, "/api/b", headers: [("X-Request-Id", longest + "r")])
            let id = try #require(replaced.headers.first(name: "x-request-id"))
            #expect(id.count == 32 && id.allSatisfy(\.isHexDigit), "\(id)")
            #expect(replaced.json["headers"]?["x-request-id"] == .string(id))
        }
    }

    @Test func unreachableUpstreamGives502() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            #expect(
                (try await gw.admin(.PUT, "/routes/dead", #"{"uri":"/dead","upstream":{"nodes":{"127.0.0.1:1":1}}}"#))
                    .status == 201)
            let result = try await gw.proxy(.GET, "/dead")
            #expect(result.status == 502)
            #expect(result.json["error_msg"] == "connection refused by 127.0.0.1:1")
            let noUpstream = try await gw.admin(.PUT, "/routes/none", #"{"uri":"/none","plugins":{}}"#)
            #expect(noUpstream.status == 201)
            let missing = try await gw.proxy(.GET, "/none")
            #expect(missing.status == 503)
            #expect(missing.json == ["error_msg": "missing upstream configuration in Route or Service"])
        }
    }

    @Test func writesAreVisibleToTheNextRequest() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            for i in 0..<20 {
                let body = #"{"uri":"/v","plugins":{"mocking":{"response_example":"v\#(i)"}}}"#
                #expect((try await gw.admin(.PUT, "/routes/v", body)).status == (i == 0 ? 201 : 200))
                #expect((try await gw.proxy(.GET, "/v")).body == "v\(i)")
            }
            #expect((try await gw.admin(.PATCH, "/routes/v", #"{"status":0}"#)).status == 200)
            #expect((try await gw.proxy(.GET, "/v")).status == 404)
        }
    }

    @Test func routesChosenByModelInTheBody() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            for (id, model) in [("gpt", "gpt-4o"), ("claude", "claude-3-5-sonnet")] {
                let route = """
                    {"uri":"/v1/chat/completions","methods":["POST"],"vars":[["post_arg.model","==","\(model)"]],
                     "plugins":{"mocking":{"response_example":"\(id)"}}}
                    """
                #expect((try await gw.admin(.PUT, "/routes/\(id)", route)).status == 201)
            }
            #expect(
                (try await gw.admin(
                    .PUT, "/routes/default",
                    #"{"uri":"/v1/*","priority":-1,"plugins":{"mocking":{"response_example":"default"}}}"#)).status
                    == 201)
            let json = [("Content-Type", "application/json")]
            #expect(
                (try await gw.proxy(.POST, "/v1/chat/completions", body: #"{"model":"gpt-4o"}"#, headers: json)).body
                    == "gpt")
            #expect(
                (try await gw.proxy(
                    .POST, "/v1/chat/completions", body: #"{"model":"claude-3-5-sonnet"}"#, headers: json))
                    .body
                    == "claude")
            #expect(
                (try await gw.proxy(.POST, "/v1/chat/completions", body: #"{"model":"x"}"#, headers: json)).body
                    == "default")
            #expect(
                (try await gw.proxy(.POST, "/v1/chat/completions", body: "not json", headers: json)).body == "default")
        }
    }

    @Test func oversizedBodiesGet413() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start { config, _ in config.proxyMaxBodySize = 1024 })
            let route =
                #"{"uri":"/big","vars":[["post_arg.model","==","m"]],"plugins":{"mocking":{"response_example":"ok"}}}"#
            #expect((try await gw.admin(.PUT, "/routes/big", route)).status == 201)
            let json = [("Content-Type", "application/json")]
            #expect((try await gw.proxy(.POST, "/big", body: #"{"model":"m"}"#, headers: json)).body == "ok")
            let big = #"{"model":"m","pad":""# + String(repeating: "x", count: 4096) + "\"}"
            let result = try await gw.proxy(.POST, "/big", body: big, headers: json)
            #expect(result.status == 413)
            #expect(result.json["error_msg"] == "request body is larger than the limit of 1024 bytes")
        }
    }

    @Test func keyAuthIdentifiesConsumers() async throws {
        try await withFixture { fx in
            let upstream = try await fx.own(FakeUpstream.start(name: "u"))
            let gw = try await fx.own(TestGateway.start())
            #expect(
                (try await gw.admin(.PUT, "/consumers", #"{"username":"jack","labels":{"custom_id":"c-1"}}"#)).status
                    == 201
            )
            #expect(
                (try await gw.admin(
                    .PUT, "/consumers/jack/credentials/k1", #"{"plugins":{"key-auth":{"key":"jack-key"}}}"#))
                    .status
                    == 201)
            #expect(
                (try await gw.admin(
                    .PUT, "/consumers", #"{"username":"jill","plugins":{"key-auth":{"key":"jill-key"}}}"#))
                    .status
                    == 201)
            let route = """
                {"uri":"/secure","plugins":{"key-auth":{}},"upstream":{"nodes":{"\(upstream.address)":1}}}
                """
            #expect((try await gw.admin(.PUT, "/routes/s", route)).status == 201)
            let hidden = """
                {"uri":"/hidden","plugins":{"key-auth":{"header":"x-key","hide_credentials":true}},"upstream":{"nodes":{"\(upstream.address)":1}}}
                """
            #expect((try await gw.admin(.PUT, "/routes/h", hidden)).status == 201)

            let missing = try await gw.proxy(.GET, "/secure")
            #expect(missing.status == 401)
            #expect(missing.json == ["message": "Missing API key in request"])
            #expect(missing.headers.first(name: "www-authenticate") == #"apikey realm="key""#)
            let invalid = try await gw.proxy(.GET, "/secure", headers: [("apikey", "nope")])
            #expect(invalid.status == 401 && invalid.json == ["message": "Invalid API key in request"])
            #expect(upstream.requests.isEmpty)

            let viaCredential = try await gw.proxy(.GET, "/secure", headers: [("apikey", "jack-key")])
            #expect(viaCredential.status == 200)
            #expect(viaCredential.json["headers"]?["x-consumer-username"] == "jack")
            #expect(viaCredential.json["headers"]?["x-credential-identifier"] == "k1")
            #expect(viaCredential.json["headers"]?["x-consumer-custom-id"] == "c-1")
            #expect(viaCredential.json["headers"]?["apikey"] == "jack-key")

            let viaQuery = try await gw.proxy(.GET, "/secure?apikey=jill-key&x=1")
            #expect(viaQuery.json["headers"]?["x-consumer-username"] == "jill")
            #expect(viaQuery.json["headers"]?["x-credential-identifier"] == nil)

            let hiddenHeader = try await gw.proxy(.GET, "/hidden", headers: [("x-key", "jill-key")])
            #expect(hiddenHeader.status == 200)
            #expect(hiddenHeader.json["headers"]?["x-key"] == nil)
            let hiddenQuery = try await gw.proxy(.GET, "/hidden?a=1&apikey=jill-key&b=2")
            #expect(hiddenQuery.json["query"] == "a=1&b=2")

            // A deleted credential stops working at once.
            #expect((try await gw.admin(.DELETE, "/consumers/jack/credentials/k1")).status == 200)
            #expect((try await gw.proxy(.GET, "/secure", headers: [("apikey", "jack-key")])).status == 401)
        }
    }

    @Test func consumerPluginsReplaceRoutePlugins() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let consumer = """
                {"username":"vip","plugins":{"key-auth":{"key":"vip-key"},"mocking":{"response_example":"consumer"}}}
                """
            #expect((try await gw.admin(.PUT, "/consumers", consumer)).status == 201)
            #expect(
                (try await gw.admin(
                    .PUT, "/consumers", #"{"username":"plain","plugins":{"key-auth":{"key":"plain-key"}}}"#))
                    .status == 201)
            let route = #"{"uri":"/who","plugins":{"key-auth":{},"mocking":{"response_example":"route"}}}"#
            #expect((try await gw.admin(.PUT, "/routes/w", route)).status == 201)
            #expect((try await gw.proxy(.GET, "/who", headers: [("apikey", "vip-key")])).body == "consumer")
            #expect((try await gw.proxy(.GET, "/who", headers: [("apikey", "plain-key")])).body == "route")
        }
    }

    @Test func pluginMetaDisableAndFilter() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let route = """
                {"uri":"/f","plugins":{
                  "key-auth":{"_meta":{"disable":true}},
                  "mocking":{"response_example":"filtered","_meta":{"filter":[["arg_mock","==","1"]]}}}}
                """
            #expect((try await gw.admin(.PUT, "/routes/f", route)).status == 201)
            #expect((try await gw.proxy(.GET, "/f?mock=1")).body == "filtered")
            #expect((try await gw.proxy(.GET, "/f")).status == 503)
        }
    }

    @Test func accessLogLineFollowsTheFormat() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(
                TestGateway.start(
                    accessLog: .text(
                        #"$remote_addr "$request_line" $status $body_bytes_sent $route_id $consumer_name $http_x_tag $request_type $llm_model"#
                    )))
            #expect(
                (try await gw.admin(
                    .PUT, "/routes/l", #"{"uri":"/log","plugins":{"mocking":{"response_example":"12345"}}}"#)).status
                    == 201
            )
            _ = try await gw.proxy(.GET, "/log?a=b", headers: [("X-Tag", "t1")])
            _ = try await gw.proxy(.GET, "/missing")
            let text = try await gw.finalAccessLog()
            let lines = text.split(separator: "\n").map(String.init)
            #expect(
                lines == [
                    #"127.0.0.1 "GET /log?a=b HTTP/1.1" 200 5 l - t1 traditional_http -"#,
                    #"127.0.0.1 "GET /missing HTTP/1.1" 404 36 - - - traditional_http -"#,
                ])
        }
    }
}

@Suite struct KeyAuthAnonymousTests {
    @Test func anonymousConsumerTakesUnauthenticatedRequests() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let guest = #"{"username":"guest","plugins":{"mocking":{"response_example":"guest"}}}"#
            #expect((try await gw.admin(.PUT, "/consumers", guest)).status == 201)
            #expect(
                (try await gw.admin(.PUT, "/consumers", #"{"username":"jack","plugins":{"key-auth":{"key":"jk"}}}"#))
                    .status
                    == 201)
            let route = """
                {"uri":"/a","plugins":{"key-auth":{"anonymous_consumer":"guest","realm":"api"},"mocking":{"response_example":"member"}}}
                """
            #expect((try await gw.admin(.PUT, "/routes/a", route)).status == 201)
            #expect((try await gw.proxy(.GET, "/a")).body == "guest")
            #expect((try await gw.proxy(.GET, "/a", headers: [("apikey", "wrong")])).body == "guest")
            #expect((try await gw.proxy(.GET, "/a", headers: [("apikey", "jk")])).body == "member")
            let missing = #"{"uri":"/b","plugins":{"key-auth":{"anonymous_consumer":"nobody","realm":"api"}}}"#
            #expect((try await gw.admin(.PUT, "/routes/b", missing)).status == 201)
            let refused = try await gw.proxy(.GET, "/b")
            #expect(refused.status == 401 && refused.json == ["message": "Invalid user authorization"])
            #expect(refused.headers.first(name: "www-authenticate") == #"apikey realm="api""#)
        }
    }
}

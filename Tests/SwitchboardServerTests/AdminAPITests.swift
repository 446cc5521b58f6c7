import Foundation
import NIOHTTP1
import SwitchboardCore
import Testing

@Suite struct AdminAPITests {
    static let mockRoute = #"{"uri":"/m","plugins":{"mocking":{"response_example":"hi"}}}"#

    @Test func routeLifecycle() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())

            let created = try await gw.admin(.PUT, "/routes/1", Self.mockRoute)
            #expect(created.status == 201)
            #expect(created.json["key"] == "/apisix/routes/1")
            let value = try #require(created.json["value"])
            #expect(value["id"] == "1")
            #expect(value["priority"] == 0 && value["status"] == 1)
            #expect(value["plugins"]?["mocking"]?["response_status"] == 200)
            let createTime = try #require(value["create_time"]?.intValue)
            #expect(createTime > 1_700_000_000)

            let replaced = try await gw.admin(
                .PUT, "/routes/1", #"{"uri":"/m2","plugins":{"mocking":{"response_example":"x"}}}"#)
            #expect(replaced.status == 200)
            #expect(replaced.json["value"]?["create_time"]?.intValue == createTime)
            #expect(replaced.json["value"]?["uri"] == "/m2")

            let fetched = try await gw.admin(.GET, "/routes/1")
            #expect(fetched.status == 200)
            #expect(fetched.json["key"] == "/apisix/routes/1")
            #expect(fetched.json["value"]?["uri"] == "/m2")
            #expect(fetched.json["createdIndex"]?.intValue != nil && fetched.json["modifiedIndex"]?.intValue != nil)
            #expect(fetched.headers.first(name: "content-type") == "application/json")
            #expect(fetched.headers.first(name: "x-api-version") == "v3")

            let list = try await gw.admin(.GET, "/routes")
            #expect(list.json["total"] == 1)
            #expect(list.json["list"]?.arrayValue?.first?["key"] == "/apisix/routes/1")

            let patched = try await gw.admin(
                .PATCH, "/routes/1", #"{"desc":"patched","priority":null,"methods":["GET"]}"#)
            #expect(patched.status == 200)
            #expect(patched.json["value"]?["desc"] == "patched")
            #expect(patched.json["value"]?["methods"] == ["GET"])
            #expect(patched.json["value"]?["priority"] == 0)  // deleted by the patch, default injected again
            #expect(patched.json["value"]?["uri"] == "/m2")

            let sub = try await gw.admin(.PATCH, "/routes/1/plugins", #"{"mocking":{"response_example":"sub"}}"#)
            #expect(sub.status == 200)
            #expect(sub.json["value"]?["plugins"]?["mocking"]?["response_example"] == "sub")
            let served = try await gw.proxy(.GET, "/m2")
            #expect(served.body == "sub")

            let badPatch = try await gw.admin(.PATCH, "/routes/1", #"{"methods":["NOPE"]}"#)
            #expect(badPatch.status == 400)
            #expect((try await gw.admin(.GET, "/routes/1")).json["value"]?["methods"] == ["GET"])

            let deleted = try await gw.admin(.DELETE, "/routes/1")
            #expect(deleted.status == 200)
            #expect(deleted.json == ["deleted": "1", "key": "/apisix/routes/1"])
            let gone = try await gw.admin(.GET, "/routes/1")
            #expect(gone.status == 404)
            #expect(gone.json == ["message": "Key not found"])
            #expect((try await gw.admin(.DELETE, "/routes/1")).status == 404)
            #expect((try await gw.admin(.PATCH, "/routes/1", "{}")).status == 404)
            #expect((try await gw.proxy(.GET, "/m2")).status == 404)
        }
    }

    @Test func idsFromPathBodyOrGenerated() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())

            let inBody = try await gw.admin(.PUT, "/routes", #"{"id":"ai-proxy-multi-route","uri":"/a","plugins":{}}"#)
            #expect(inBody.status == 201)
            #expect(inBody.json["key"] == "/apisix/routes/ai-proxy-multi-route")
            let missing = try await gw.admin(.PUT, "/routes", #"{"uri":"/a","plugins":{}}"#)
            #expect(missing.status == 400 && missing.json == ["error_msg": "missing route id"])
            let wrong = try await gw.admin(.PUT, "/routes/a", #"{"id":"b","uri":"/a","plugins":{}}"#)
            #expect(wrong.status == 400 && wrong.json == ["error_msg": "wrong route id"])
            let numeric = try await gw.admin(.PUT, "/routes/7", #"{"id":7,"uri":"/a","plugins":{}}"#)
            #expect(numeric.status == 201)

            let first = try await gw.admin(.POST, "/routes", #"{"uri":"/p","plugins":{}}"#)
            let second = try await gw.admin(.POST, "/services", #"{"plugins":{}}"#)
            #expect(first.status == 201 && second.status == 201)
            let id1 = try #require(first.json["value"]?["id"]?.stringValue)
            let id2 = try #require(second.json["value"]?["id"]?.stringValue)
            #expect(id1.count == 20 && id1.allSatisfy(\.isNumber))
            #expect(id2.count == 20 && id2 > id1)
            #expect(first.json["key"] == .string("/apisix/routes/\(id1)"))
            let withID = try await gw.admin(.POST, "/routes", #"{"id":"x","uri":"/p","plugins":{}}"#)
            #expect(withID.status == 400 && withID.json == ["error_msg": "wrong route id, do not need it"])
        }
    }

    @Test func invalidBodiesAreRejectedAndNothingIsStored() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())

            // The seed document's example with the missing quote after fallback_strategy, verbatim.
            let seedTypo = """
                {
                "id": "ai-proxy-multi-route",
                "uri": "/anything",
                "methods": ["POST"],
                "plugins": {
                "ai-proxy-multi": {
                "fallback_strategy: "instance_health_and_rate_limiting",
                "instances": []
                }
                }
                }
                """
            let typo = try await gw.admin(.PUT, "/routes", seedTypo)
            #expect(typo.status == 400)
            #expect(
                typo.json["error_msg"]
                    == "invalid request body: unexpected 'i', expected ':' after object key \"fallback_strategy: \" at line 7, column 22"
            )
            #expect(typo.json["req_body"] == .string(seedTypo))

            let cases: [(String, String)] = [
                (
                    #"{"uri":"/a","methods":["GETT"],"plugins":{}}"#,
                    #"invalid configuration: property "methods" validation failed: failed to validate item 1: matches none of the enum values"#
                ),
                (#"{"uri":"/a","plugins":{"nope":{}}}"#, "unknown plugin [nope]"),
                (
                    #"{"uri":"/a","plugins":{"mocking":{}}}"#,
                    #"failed to check the configuration of plugin mocking err: object matches none of the required: ["response_example"] or ["response_schema"]"#
                ),
                (
                    #"{"uri":"/a","plugins":{"key-auth":{"header":5}}}"#,
                    #"failed to check the configuration of plugin key-auth err: property "header" validation failed: wrong type: expected string, got number"#
                ),
                (#"{"uri":"/a","plugins":{},"create_time":1}"#, "the property is forbidden:  create_time"),
                (
                    #"{"uri":"/a","plugins":{},"bogus":1}"#,
                    "invalid configuration: additional properties forbidden, found bogus"
                ),
                (
                    #"{"uri":"/a","upstream_id":"nope"}"#,
                    "failed to fetch upstream info by upstream id [nope], response code: 404"
                ),
                (
                    #"{"uri":"/a","plugins":{},"vars":[["arg_a","=~","x"]]}"#,
                    "invalid configuration: failed to validate the 'vars' expression: invalid operator '=~'"
                ),
                (#"[1,2]"#, "invalid configuration: wrong type: expected object, got table"),
            ]
            for (body, message) in cases {
                let result = try await gw.admin(.PUT, "/routes/r", body)
                #expect(result.status == 400, "\(body)")
                #expect(result.json["error_msg"] == .string(message), "\(body)")
            }
            #expect((try await gw.admin(.GET, "/routes")).json["total"] == 0)

            let huge = "{\"uri\":\"/a\",\"desc\":\"" + String(repeating: "x", count: 2_000_000) + "\"}"
            let tooLarge = try await gw.admin(.PUT, "/routes/r", huge)
            #expect(tooLarge.status == 413)
            #expect(tooLarge.json["error_msg"] != nil)
        }
    }

    @Test func authenticationAndRoles() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())

            let missing = try await gw.admin(.GET, "/routes", key: nil)
            #expect(missing.status == 401)
            #expect(missing.json == ["error_msg": "failed to check token", "description": "missing apikey"])
            let wrong = try await gw.admin(.GET, "/routes", key: "test-admin-kez")
            #expect(wrong.status == 401 && wrong.json["description"] == "wrong apikey")
            let prefix = try await gw.admin(.GET, "/routes", key: "test-admin-key-longer")
            #expect(prefix.status == 401)
            let query = try await HTTP.send(.GET, gw.adminBase + "/apisix/admin/routes?api_key=\(TestGateway.adminKey)")
            #expect(query.status == 200)

            // A viewer reads; every kind of write is refused and changes nothing in the store.
            #expect((try await gw.admin(.PUT, "/routes/1", Self.mockRoute)).status == 201)
            let before = try await gw.admin(.GET, "/routes")
            #expect(before.status == 200 && before.json["total"] == 1)
            #expect((try await gw.admin(.GET, "/routes", key: TestGateway.viewerKey)).body == before.body)
            let writes: [(HTTPMethod, String, String?)] = [
                (.PUT, "/routes/2", Self.mockRoute), (.POST, "/routes", Self.mockRoute),
                (.PATCH, "/routes/1", #"{"desc":"changed"}"#), (.DELETE, "/routes/1", nil),
            ]
            for (method, path, body) in writes {
                let refused = try await gw.admin(method, path, body, key: TestGateway.viewerKey)
                #expect(refused.status == 401, "\(method) \(path)")
                #expect(refused.json["description"] == "invalid method for role viewer", "\(method) \(path)")
            }
            #expect((try await gw.admin(.GET, "/routes")).body == before.body)
            #expect((try await gw.admin(.DELETE, "/routes/1")).status == 200)

            let unknown = try await gw.admin(.GET, "/foo")
            #expect(unknown.status == 404 && unknown.json == ["error_msg": "Unsupported resource type: foo"])
            let plugins = try await gw.admin(.GET, "/plugins/list")
            #expect(plugins.json.arrayValue?.contains("key-auth") == true)
        }
    }

    @Test func upstreamsAndServices() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())

            #expect((try await gw.admin(.PUT, "/upstreams/u1", #"{"nodes":{"127.0.0.1:1":1}}"#)).status == 201)
            let badUpstream = try await gw.admin(.PUT, "/upstreams/u2", #"{"nodes":{"127.0.0.1:1":-1}}"#)
            #expect(badUpstream.status == 400)
            #expect(
                (try await gw.admin(
                    .PUT, "/services/s1",
                    #"{"upstream_id":"u1","plugins":{"mocking":{"response_example":"from service"}}}"#
                ))
                .status == 201)
            #expect((try await gw.admin(.PUT, "/routes/r1", #"{"uri":"/svc","service_id":"s1"}"#)).status == 201)
            let served = try await gw.proxy(.GET, "/svc")
            #expect(served.status == 200 && served.body == "from service")

            let inUse = try await gw.admin(.DELETE, "/upstreams/u1")
            #expect(inUse.status == 400)
            #expect(inUse.json["error_msg"] == "can not delete this upstream, service [s1] is still using it now")
            let serviceInUse = try await gw.admin(.DELETE, "/services/s1")
            #expect(serviceInUse.json["error_msg"] == "can not delete this service, route [r1] is still using it now")
            #expect((try await gw.admin(.DELETE, "/routes/r1")).status == 200)
            #expect((try await gw.admin(.DELETE, "/services/s1")).status == 200)
            #expect((try await gw.admin(.DELETE, "/upstreams/u1")).status == 200)
            #expect((try await gw.admin(.GET, "/upstreams")).json["total"] == 0)
        }
    }

    @Test func consumersAndCredentials() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())

            // The seed's consumer and credential commands.
            let john = try await gw.admin(
                .PUT, "/consumers", #"{"username":"johndoe","plugins":{"key-auth":{"key":"inline-john"}}}"#)
            #expect(john.status == 201)
            #expect(john.json["key"] == "/apisix/consumers/johndoe")
            let cred = try await gw.admin(
                .PUT, "/consumers/johndoe/credentials",
                #"{"id":"cred-john-key-auth","plugins":{"key-auth":{"key":"john-key"}}}"#)
            #expect(cred.status == 201)
            #expect(cred.json["key"] == "/apisix/consumers/johndoe/credentials/cred-john-key-auth")
            #expect(cred.json["value"]?["id"] == "cred-john-key-auth")
            #expect(
                (try await gw.admin(
                    .PUT, "/consumers/johndoe/credentials/cred-john-key-auth",
                    #"{"plugins":{"key-auth":{"key":"john-key"}}}"#)).status == 200)

            let list = try await gw.admin(.GET, "/consumers/johndoe/credentials")
            #expect(list.json["total"] == 1)
            #expect((try await gw.admin(.GET, "/consumers")).json["total"] == 1)

            let dupCredential = try await gw.admin(
                .PUT, "/consumers", #"{"username":"janedoe","plugins":{"key-auth":{"key":"john-key"}}}"#)
            #expect(dupCredential.status == 400)
            #expect(
                dupCredential.json["error_msg"]
                    == "duplicate key of plugin key-auth found with credential: cred-john-key-auth of consumer: johndoe"
            )
            #expect((try await gw.admin(.PUT, "/consumers/janedoe", #"{"plugins":{}}"#)).status == 201)
            let dupConsumer = try await gw.admin(
                .PUT, "/consumers/janedoe/credentials/c", #"{"plugins":{"key-auth":{"key":"inline-john"}}}"#)
            #expect(dupConsumer.json["error_msg"] == "duplicate key of plugin key-auth found with consumer: johndoe")

            let wrongName = try await gw.admin(.PUT, "/consumers/a", #"{"username":"b"}"#)
            #expect(wrongName.status == 400 && wrongName.json == ["error_msg": "wrong username"])
            let noName = try await gw.admin(.PUT, "/consumers", #"{"plugins":{}}"#)
            #expect(noName.json == ["error_msg": "invalid configuration: property \"username\" is required"])
            let post = try await gw.admin(.POST, "/consumers", #"{"username":"x"}"#)
            #expect(post.status == 405 && post.json == ["error_msg": "not supported `POST` method for consumer"])
            let patch = try await gw.admin(.PATCH, "/consumers/johndoe/credentials/x", "{}")
            #expect(patch.status == 405 && patch.json == ["error_msg": "not supported `PATCH` method for credential"])
            let unknownConsumer = try await gw.admin(
                .PUT, "/consumers/nobody/credentials/c1", #"{"plugins":{"key-auth":{"key":"k"}}}"#)
            #expect(unknownConsumer.status == 404 && unknownConsumer.json == ["error_msg": "consumer not found"])
            let nonAuth = try await gw.admin(
                .PUT, "/consumers/janedoe/credentials/c2", #"{"plugins":{"mocking":{"response_example":"x"}}}"#)
            #expect(nonAuth.json == ["error_msg": "only supports auth type plugins in consumer credential"])
            let missingKey = try await gw.admin(
                .PUT, "/consumers/janedoe/credentials/c3", #"{"plugins":{"key-auth":{}}}"#)
            #expect(
                missingKey.json["error_msg"]
                    == "invalid plugins configuration: failed to check the configuration of plugin key-auth err: property \"key\" is required"
            )
            let noID = try await gw.admin(.PUT, "/consumers/janedoe/credentials", #"{"plugins":{}}"#)
            #expect(noID.json == ["error_msg": "missing credential id"])

            #expect((try await gw.admin(.DELETE, "/consumers/johndoe")).status == 200)
            #expect((try await gw.admin(.GET, "/consumers/johndoe/credentials")).status == 404)
            // The key is free again once its consumer is gone.
            #expect(
                (try await gw.admin(
                    .PUT, "/consumers/janedoe/credentials/c4", #"{"plugins":{"key-auth":{"key":"john-key"}}}"#)).status
                    == 201)
        }
    }

    @Test func configurationSurvivesARestart() async throws {
        try await withFixture { fx in
            let directory = TestGateway.makeDirectory()
            let first = try await fx.own(TestGateway.start(directory: directory))
            #expect((try await first.admin(.PUT, "/routes/1", Self.mockRoute)).status == 201)
            #expect(
                (try await first.admin(.PUT, "/consumers/jack", #"{"plugins":{"key-auth":{"key":"jack-key"}}}"#)).status
                    == 201)
            #expect(
                (try await first.admin(
                    .PUT, "/consumers/jack/credentials/c", #"{"plugins":{"key-auth":{"key":"jack-2"}}}"#))
                    .status == 201)
            let before = try await first.admin(.GET, "/routes/1")
            await first.stop()

            let second = try await fx.own(TestGateway.start(directory: directory))
            let after = try await second.admin(.GET, "/routes/1")
            #expect(after.json == before.json)
            #expect((try await second.admin(.GET, "/consumers/jack/credentials/c")).status == 200)
            #expect((try await second.proxy(.GET, "/m")).body == "hi")
            // Ids keep increasing across restarts.
            let posted = try await second.admin(.POST, "/routes", #"{"uri":"/n","plugins":{}}"#)
            #expect(try #require(posted.json["value"]?["id"]?.stringValue) > "00000000000000000003")
        }
    }
}

@Suite struct AdminResourceLifecycleTests {
    /// Every writable kind goes through create, replace, read, list, merge patch and delete.
    @Test(arguments: [
        ("routes", #"{"uri":"/a","plugins":{}}"#, #"{"desc":"patched"}"#),
        ("services", #"{"plugins":{}}"#, #"{"desc":"patched"}"#),
        ("upstreams", #"{"nodes":{"127.0.0.1:80":1}}"#, #"{"desc":"patched"}"#),
    ])
    func lifecycle(kind: String, body: String, patch: String) async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            #expect((try await gw.admin(.PUT, "/\(kind)/x", body)).status == 201)
            #expect((try await gw.admin(.PUT, "/\(kind)/x", body)).status == 200)
            let posted = try await gw.admin(.POST, "/\(kind)", body)
            #expect(posted.status == 201)
            let read = try await gw.admin(.GET, "/\(kind)/x")
            #expect(read.status == 200 && read.json["key"] == .string("/apisix/\(kind)/x"))
            #expect((try await gw.admin(.GET, "/\(kind)")).json["total"] == 2)
            let paged = try await gw.admin(.GET, "/\(kind)?page=2&page_size=10")
            #expect(paged.json["total"] == 2 && paged.json["list"] == [])
            #expect(
                (try await gw.admin(.GET, "/\(kind)?page=1&page_size=5")).json["error_msg"]
                    == "page_size must be between 10 and 500")
            let patched = try await gw.admin(.PATCH, "/\(kind)/x", patch)
            #expect(patched.status == 200 && patched.json["value"]?["desc"] == "patched")
            #expect((try await gw.admin(.DELETE, "/\(kind)/x")).status == 200)
            #expect((try await gw.admin(.GET, "/\(kind)")).json["total"] == 1)
        }
    }
}

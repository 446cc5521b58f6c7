import Foundation
import SwitchboardCore
import Testing

/// Issue 18: the Admin API is described by an OpenAPI 3.1 document (served, and checked in as
/// docs/admin-api.openapi.json), and schemathesis fuzzes a live gateway against it.
@Suite struct AdminOpenAPITests {
    static let checkedIn: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.lastPathComponent != "Tests" { url.deleteLastPathComponent() }
        return url.deletingLastPathComponent().appendingPathComponent("docs/admin-api.openapi.json")
    }()

    /// Served without a key, and the same document as the checked-in one.
    @Test func theServedDocumentIsTheCheckedInOne() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let served = try await HTTP.send(.GET, gw.adminBase + "/apisix/admin/openapi.json")
            #expect(served.status == 200)
            #expect(served.headers.first(name: "content-type") == "application/json")
            let document = try JSONParser.parse(served.body)
            #expect(document["openapi"] == "3.1.0")
            let file = try JSONParser.parse(try String(contentsOf: Self.checkedIn, encoding: .utf8))
            #expect(document == file, "run python3 scripts/admin_openapi.py")
            // Every resource kind of the Admin API is described.
            let paths = document["paths"]?.objectValue?.keys.map { $0 } ?? []
            for kind in [
                "routes", "services", "upstreams", "consumers", "consumer_groups", "plugin_configs",
                "global_rules", "ssls", "secrets/vault", "plugin_metadata",
            ] {
                #expect(paths.contains("/apisix/admin/\(kind)"), "\(kind)")
            }
        }
    }

    /// schemathesis against a live gateway: no 5xx, every status, content type, body and header
    /// as documented; afterwards every list still reads and the data plane serves.
    @Test func schemathesisFindsNothingAndTheStoreSurvives() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let run = try await Spawned.finish(
                "python3",
                [
                    Spawned.clientScript("admin_schemathesis.py"), "--url", gw.adminBase, "--key",
                    TestGateway.adminKey, "--schema", gw.adminBase + "/apisix/admin/openapi.json",
                ])
            #expect(run.status == 0, "\(run.stdout.suffix(6000))\(run.stderr.suffix(3000))")
            for kind in ["routes", "services", "upstreams", "consumers", "ssls", "global_rules", "plugin_configs"] {
                #expect((try await gw.admin(.GET, "/\(kind)")).status == 200, "\(kind)")
            }
            // The fuzzer's global rules (a global key-auth, say) apply to every route: gone first.
            let rules = try await gw.admin(.GET, "/global_rules")
            for rule in rules.json["list"]?.arrayValue ?? [] {
                if let id = rule["value"]?["id"]?.stringValue { _ = try await gw.admin(.DELETE, "/global_rules/\(id)") }
            }
            let route = #"{"uri":"/after-fuzzing","plugins":{"mocking":{"response_example":"still serving"}}}"#
            #expect((try await gw.admin(.PUT, "/routes/after-fuzzing", route)).status == 201)
            let answer = try await gw.proxy(.GET, "/after-fuzzing")
            #expect(answer.status == 200 && answer.body == "still serving", "\(answer.status) \(answer.body)")
        }
    }

    /// What the fuzzing found: a top-level array was stored as an (empty) object, an `id` of
    /// any JSON type was stored under its text, and an empty list filter was a 400.
    @Test func bodiesThatAreNotObjectsAndIDsOfOtherTypesAreRefused() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            for path in ["/upstreams/x", "/services/x", "/consumers/c1", "/consumer_groups/x", "/global_rules/x"] {
                let result = try await gw.admin(.PUT, path, "[]")
                #expect(result.status == 400, "\(path): \(result.body)")
                #expect(result.json["error_msg"] == "invalid configuration: wrong type: expected object, got table")
            }
            #expect((try await gw.admin(.PUT, "/upstreams/u1", #"{"nodes":{"127.0.0.1:80":1}}"#)).status == 201)
            #expect((try await gw.admin(.PATCH, "/upstreams/u1", "[]")).status == 400)
            #expect((try await gw.admin(.GET, "/upstreams/u1")).json["value"]?["nodes"] == ["127.0.0.1:80": 1])
            for id in ["null", "true", "1.5", "0", "-1", "{}"] {
                let result = try await gw.admin(.PUT, "/routes", #"{"id":\#(id),"uri":"/r","plugins":{}}"#)
                #expect(result.status == 400, "id \(id): \(result.body)")
            }
            #expect((try await gw.admin(.PUT, "/routes", #"{"id":7,"uri":"/r","plugins":{}}"#)).status == 201)
            #expect((try await gw.admin(.PUT, "/consumers/abc", #"{"username":5}"#)).status == 400)
            let all = try await gw.admin(.GET, "/routes?name=")
            #expect(all.status == 200 && all.json["total"] == 1)
        }
    }
}

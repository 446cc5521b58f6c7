import Foundation
import NIOHTTP1
import SwitchboardCore
import Testing

@testable import SwitchboardServer

/// The dashboard's session handling and JSON API on the admin listener (the page itself is
/// driven by a browser in the browser tests).
@Suite struct DashboardAPITests {
    struct Session {
        var cookie: String
        var csrf: String
    }

    static func signIn(_ gw: TestGateway, key: String) async throws -> (HTTPResult, Session?) {
        let result = try await HTTP.send(
            .POST, gw.adminBase + "/ui/api/session", body: #"{"key":"\#(key)"}"#,
            headers: [("Content-Type", "application/json")])
        guard result.status == 200, let setCookie = result.headers.first(name: "set-cookie"),
            let csrf = result.json["csrf"]?.stringValue
        else { return (result, nil) }
        let cookie = String(setCookie.split(separator: ";")[0])
        return (result, Session(cookie: cookie, csrf: csrf))
    }

    static func call(
        _ gw: TestGateway, _ method: HTTPMethod, _ path: String, _ session: Session?, body: String? = nil,
        csrf: Bool = true
    ) async throws -> HTTPResult {
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        if let session {
            headers.append(("Cookie", session.cookie))
            if csrf { headers.append(("X-CSRF-Token", session.csrf)) }
        }
        return try await HTTP.send(method, gw.adminBase + "/ui/api/" + path, body: body, headers: headers)
    }

    /// Sign-in gives an HttpOnly, SameSite=Strict cookie and a CSRF token; writes need both
    /// and the admin role; sign-out ends the session.
    @Test func sessionsRolesAndCSRF() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let page = try await HTTP.send(.GET, gw.adminBase + "/ui/")
            #expect(page.status == 200 && page.body.contains("<title>Switchboard</title>"))
            #expect(page.headers.first(name: "content-security-policy")?.contains("frame-ancestors 'none'") == true)
            #expect(try await Self.call(gw, .GET, "overview", nil).status == 401)
            let (wrong, none) = try await Self.signIn(gw, key: "not-a-key")
            #expect(wrong.status == 401 && none == nil)

            let (signedIn, viewerSession) = try await Self.signIn(gw, key: TestGateway.viewerKey)
            let viewer = try #require(viewerSession)
            let setCookie = signedIn.headers.first(name: "set-cookie") ?? ""
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict"))
            #expect(!setCookie.contains(TestGateway.viewerKey) && !signedIn.body.contains(TestGateway.viewerKey))
            #expect(signedIn.json["role"] == "viewer")
            #expect(try await Self.call(gw, .GET, "overview?window=24h", viewer).status == 200)
            #expect(try await Self.call(gw, .GET, "admin/routes", viewer).json["total"] == 0)
            let route = #"{"uri":"/hello","plugins":{"mocking":{"response_example":"hi"}}}"#
            let viewerWrite = try await Self.call(gw, .PUT, "admin/routes/hello", viewer, body: route)
            #expect(viewerWrite.status == 403)

            let admin = try #require(try await Self.signIn(gw, key: TestGateway.adminKey).1)
            let noCSRF = try await Self.call(gw, .PUT, "admin/routes/hello", admin, body: route, csrf: false)
            #expect(noCSRF.status == 403)
            #expect(try await Self.call(gw, .PUT, "admin/routes/hello", admin, body: route).status == 201)
            let invalid = try await Self.call(
                gw, .PUT, "admin/routes/bad", admin, body: #"{"uri":"/x","methods":["FETCH"],"plugins":{}}"#)
            #expect(invalid.status == 400)
            #expect(invalid.json["error_msg"]?.stringValue?.contains("property \"methods\" validation failed") == true)
            #expect(try await gw.proxy(.GET, "/hello").body == "hi")

            #expect(try await Self.call(gw, .DELETE, "session", admin).status == 200)
            #expect(try await Self.call(gw, .GET, "overview", admin).status == 401)
            #expect(try await Self.call(gw, .GET, "overview", viewer).status == 200, "other sessions go on")
        }
    }

    /// A failed-over request's trace lists its attempts, found by the X-Request-Id the client
    /// got; the overview counts the traffic and its tokens.
    @Test func tracesAndOverview() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .json(status: 500, body: #"{"error":{"message":"boom"}}"#) }
            f.b.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "model-b", usage: (20, 7))) }
            let a = f.instance("a", f.a, model: "model-a", extra: #","priority":1"#)
            let b = f.instance("b", f.b, model: "model-b")
            try await f.route(#"{"fallback_strategy":["http_5xx"],"instances":[\#(a),\#(b)]}"#)
            let answer = try await f.chat()
            #expect(answer.status == 200)
            let requestID = try #require(answer.headers.first(name: "x-request-id"))

            let session = try #require(try await Self.signIn(f.gw, key: TestGateway.viewerKey).1)
            let found = try await Self.call(f.gw, .GET, "traces?request_id=\(requestID)", session)
            let trace = try #require(found.json["list"]?[0])
            #expect(trace["status"] == 200 && trace["instance"] == "b" && trace["model_served"] == "model-b")
            #expect(trace["prompt_tokens"] == 20 && trace["completion_tokens"] == 7)
            let attempts = trace["attempts"]?.arrayValue ?? []
            #expect(attempts.map { $0["instance"]?.stringValue } == ["a", "b"])
            #expect(attempts.map { $0["error_class"]?.stringValue } == ["server", nil])
            #expect(attempts.map { $0["status"]?.intValue } == [500, 200])

            let overview = try await Self.call(f.gw, .GET, "overview?window=15m", session)
            #expect(overview.json["total"]?["requests"] == 1)
            #expect(overview.json["points"]?.arrayValue?.count == 15)
            #expect(overview.json["total"]?["errors"] == 0, "the client got its answer")
            let byInstance = try await Self.call(f.gw, .GET, "overview?window=24h&instance=b", session)
            #expect(byInstance.json["total"]?["requests"] == 1)
        }
    }

    /// The dashboard's session cookie, which a browser also sends to the proxy port (cookies
    /// are not bound to ports), never reaches an upstream; the trace keeps at most 256 bytes of
    /// a client's path; sign-in takes JSON only.
    @Test func whatComesFromClientsIsBounded() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let upstream = try await fx.own(FakeUpstream.start(name: "u"))
            let route = #"{"uri":"/api/*","upstream":{"nodes":{"\#(upstream.address)":1}}}"#
            #expect(try await gw.admin(.PUT, "/routes/api", route).status == 201)
            let forwarded = try await gw.proxy(
                .GET, "/api/x", headers: [("Cookie", "a=1; \(DashboardSessions.cookieName)=secret-session; b=2")])
            #expect(forwarded.status == 200)
            #expect(upstream.requests.last?.headers[.cookie] == "a=1; b=2")

            let long = "/api/" + String(repeating: "p", count: 5000)
            #expect(try await gw.proxy(.GET, long).status == 200)
            let session = try #require(try await Self.signIn(gw, key: TestGateway.viewerKey).1)
            let traces = try await Self.call(gw, .GET, "traces?limit=1", session)
            let path = traces.json["list"]?[0]?["path"]?.stringValue ?? ""
            #expect(path.hasPrefix("/api/ppp") && path.utf8.count <= 260)

            let form = try await HTTP.send(
                .POST, gw.adminBase + "/ui/api/session", body: #"{"key":"\#(TestGateway.adminKey)"}"#,
                headers: [("Content-Type", "text/plain")])
            #expect(form.status == 400, "a cross-site form cannot sign a browser in")
        }
    }

    @Test func ruleKeysAreShownOnlyByTheirStart() {
        #expect(QuotaBoard.shown("gpt-4o") == "gpt-4o")
        #expect(QuotaBoard.shown("rule:team") == "rule:team")
        #expect(QuotaBoard.shown("rule:sk-client-api-key") == "rule:sk-c… (17 characters)")
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SwitchboardCore

/// The built-in dashboard on the admin listener: the page at `/ui/` (files compiled into the
/// binary, ``DashboardAssets``) and its JSON API at `/ui/api/`. Every API call needs a signed-in
/// session (``DashboardSessions``); every write also needs the session's CSRF token and the
/// `admin` role. Configuration is read and written through the Admin API's own handling, so its
/// validation and messages are the same.
struct DashboardResponder: Sendable {
    let keyring: AdminKeyring
    let sessions = DashboardSessions()
    let telemetry: Telemetry
    let health: HealthRegistry
    let manager: ConfigManager
    let services: GatewayServices
    /// The nodes of the cluster and the revision each applied (this node alone without one).
    let cluster: @Sendable () async -> (HTTPResponse.Status, JSONValue)

    /// Headers of every dashboard answer: no framing, no sniffing, no referrer, scripts only
    /// from the page's own origin.
    static let securityHeaders: HTTPFields = [
        HTTPField.Name("Content-Security-Policy")!:
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "no-referrer",
        .cacheControl: "no-store",
    ]

    func respond(to request: Request, admin: AdminResponder) async -> Response {
        var request = request
        let path = request.uri.path
        switch path {
        case "/ui":
            var headers = Self.securityHeaders
            headers[.location] = "/ui/"
            return Response(status: .movedPermanently, headers: headers)
        case "/ui/", "/ui/index.html": return asset(DashboardAssets.index, type: "text/html; charset=utf-8")
        case "/ui/app.js": return asset(DashboardAssets.script, type: "text/javascript; charset=utf-8")
        case "/ui/app.css": return asset(DashboardAssets.style, type: "text/css; charset=utf-8")
        default: break
        }
        guard path.hasPrefix("/ui/api/") else { return json(.notFound, ["error_msg": "not found"]) }
        let route = String(path.dropFirst("/ui/api/".count))
        if route == "session" { return await sessionCall(&request) }
        let cookie = DashboardSessions.cookie(request.headers[.cookie])
        guard let session = sessions.session(cookie) else {
            return json(.unauthorized, ["error_msg": "sign in first"])
        }
        if request.method != .get {
            guard DashboardSessions.csrfMatches(session, request.headers[HTTPField.Name("X-CSRF-Token")!]) else {
                return json(.forbidden, ["error_msg": "missing or wrong X-CSRF-Token"])
            }
            guard session.role == .admin else {
                return json(.forbidden, ["error_msg": "the viewer role may not change anything"])
            }
        }
        let parameters = request.uri.queryParameters
        switch route {
        case "overview":
            let window = parameters["window"].flatMap { Telemetry.Window(rawValue: String($0)) } ?? .lastQuarterHour
            return json(
                .ok,
                telemetry.overview(
                    window, route: parameters["route"].map(String.init),
                    instance: parameters["instance"].map(String.init)))
        case "traces":
            let limit = parameters["limit"].flatMap { Int($0) }.map { min(max($0, 0), 1000) } ?? 100
            let found = telemetry.traces(limit: limit, requestID: parameters["request_id"].map(String.init))
            return json(.ok, ["list": .array(found.map(\.json))])
        case "instances":
            return json(.ok, ["list": .array(await instances())])
        case "quotas":
            let list = services.quotaBoard.list(now: Date().timeIntervalSince1970) { key, window, shared in
                if shared, let cluster = services.clusterQuotas { return cluster.known(key, window: window) }
                return services.quotas.peek(key, window: window)
            }
            return json(.ok, ["list": .array(list)])
        case "cluster":
            let (status, view) = await cluster()
            return json(status, view)
        default:
            guard route.hasPrefix("admin/") || route == "admin" else {
                return json(.notFound, ["error_msg": "not found"])
            }
            let (status, body) = await admin.handle(&request, path: "/apisix/" + route)
            return json(HTTPResponse.Status(code: status), body)
        }
    }

    /// `POST` signs in with `{"key": ...}`, `GET` tells who is signed in, `DELETE` signs out.
    private func sessionCall(_ request: inout Request) async -> Response {
        let cookie = DashboardSessions.cookie(request.headers[.cookie])
        switch request.method {
        case .post:
            // JSON only: a form on another site cannot sign a browser in to someone's session.
            guard request.headers[.contentType].map({ ASCII.hasPrefix($0, "application/json") }) == true,
                let buffer = try? await request.collectBody(upTo: 4096),
                let body = try? JSONParser.parse(buffer.readableBytesView), let key = body["key"]?.stringValue
            else {
                return json(.badRequest, ["error_msg": "send {\"key\": \"<admin key>\"} as JSON"])
            }
            guard case .allowed(let role) = keyring.check(key) else {
                return json(.unauthorized, ["error_msg": "wrong key"])
            }
            let (id, csrf) = sessions.start(role)
            var headers = Self.securityHeaders
            headers[.setCookie] =
                "\(DashboardSessions.cookieName)=\(id); Path=/ui; HttpOnly; SameSite=Strict; Max-Age=\(Int(DashboardSessions.lifetime / .seconds(1)))"
            return GatewayResponse.json(
                .ok, ["role": .string(Self.name(role)), "csrf": .string(csrf)], headers: headers)
        case .get:
            guard let session = sessions.session(cookie) else {
                return json(.unauthorized, ["error_msg": "sign in first"])
            }
            return json(.ok, ["role": .string(Self.name(session.role)), "csrf": .string(session.csrf)])
        case .delete:
            guard let cookie, let session = sessions.session(cookie),
                DashboardSessions.csrfMatches(session, request.headers[HTTPField.Name("X-CSRF-Token")!])
            else {
                return json(.forbidden, ["error_msg": "missing or wrong X-CSRF-Token"])
            }
            sessions.end(cookie)
            var headers = Self.securityHeaders
            headers[.setCookie] = "\(DashboardSessions.cookieName)=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"
            return GatewayResponse.json(.ok, ["signed_out": true], headers: headers)
        default:
            return json(.methodNotAllowed, ["error_msg": "not supported"])
        }
    }

    /// Every instance of every AI route: its configuration (weight, priority), its health
    /// (active, passive, breaker, cooldown with the seconds left), the attempts on it now, and
    /// the error classes of its last 15 minutes.
    private func instances() async -> [JSONValue] {
        let state = await manager.state
        let now = Date().timeIntervalSince1970
        var byInstance: [String: InstanceHealth] = [:]
        for entry in health.all() { byInstance["\(entry.routeID ?? "")|\(entry.instance)"] = entry }
        var rows: [JSONValue] = []
        for record in state.list(.routes) where record.value["status"]?.intValue != 0 {
            let route = record.value
            let plugins = state.plugins(ofRoute: route)
            let multi = plugins["ai-proxy-multi"]
            var instances = multi?["instances"]?.arrayValue ?? []
            if multi == nil, let single = plugins["ai-proxy"] {
                var one = single
                one["name"] = .string("ai-proxy-\(single["provider"]?.stringValue ?? "")")
                instances = [one]
            }
            for instance in instances {
                let name = instance["name"]?.stringValue ?? ""
                var row: JSONObject = [
                    "route_id": .string(record.id), "route_name": route["name"] ?? .null, "instance": .string(name),
                    "provider": instance["provider"] ?? .null, "weight": instance["weight"] ?? .null,
                    "priority": instance["priority"] ?? .int(0),
                ]
                let entry = byInstance["\(record.id)|\(name)"]
                let node = entry?.describe()["nodes"]?[0]
                row["status"] = node?["status"] ?? "unknown"
                row["available"] = node?["available"] ?? .bool(true)
                row["active_checks"] = .bool(entry?.isChecked ?? false)
                row["passive"] = node?["passive"] ?? .null
                row["breaker"] = node?["breaker"] ?? .null
                row["last_probe"] = node?["last_probe"] ?? .null
                if let until = node?["cooldown_until"]?.doubleValue, until > now {
                    row["cooldown_seconds_left"] = .double(((until - now) * 10).rounded() / 10)
                } else {
                    row["cooldown_seconds_left"] = .null
                }
                row["in_flight"] = .int(entry?.inFlight.load(ordering: .relaxed) ?? 0)
                row["recent_errors"] = .object(telemetry.recentErrors(route: record.id, instance: name))
                rows.append(.object(row))
            }
        }
        return rows
    }

    static func name(_ role: AdminKeyring.Role) -> String { role == .admin ? "admin" : "viewer" }

    private func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        GatewayResponse.json(status, value, headers: Self.securityHeaders)
    }

    private func asset(_ text: String, type: String) -> Response {
        var headers = Self.securityHeaders
        headers[.contentType] = type
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SwitchboardCore

/// The Admin API at `/apisix/admin`, compatible with APISIX's: same paths, methods, status
/// codes, envelopes and error messages, so APISIX's documented curl commands work unchanged.
/// Every answer is JSON.
public struct AdminResponder: HTTPResponder {
    public typealias Context = GatewayRequestContext

    let manager: ConfigManager
    let keyring: AdminKeyring
    let pluginNames: [String]
    /// The built-in dashboard at `/ui/` (`nil`: not served).
    var dashboard: DashboardResponder?
    /// The longest the `name` and `uri` filters of one list may take.
    static let filterTimeBudget: Duration = .milliseconds(200)
    /// APISIX accepts admin bodies up to 1.5 MiB.
    static let maxBodySize = 1_572_864

    public init(manager: ConfigManager, keyring: AdminKeyring, pluginNames: [String]) {
        self.manager = manager
        self.keyring = keyring
        self.pluginNames = pluginNames.sorted()
    }

    typealias Rejection = ConfigManager.Rejection

    public func respond(to request: Request, context: Context) async throws -> Response {
        if let dashboard, request.uri.path == "/ui" || request.uri.path.hasPrefix("/ui/") {
            return await dashboard.respond(to: request, admin: self)
        }
        // The API's description is public (no key): it says what the API is, not what it holds.
        if request.uri.path == "/apisix/admin/openapi.json", request.method == .get {
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: Self.openAPI))
        }
        var request = request
        let (status, body) = await answer(&request)
        var headers = HTTPFields()
        headers[HTTPField.Name("X-API-VERSION")!] = "v3"
        // A cluster node cut off from its database answers reads from what it last loaded.
        if request.method == .get, manager.store.isStale {
            headers[HTTPField.Name("X-Switchboard-Stale")!] = "true"
        }
        return GatewayResponse.json(HTTPResponse.Status(code: status), body, headers: headers)
    }

    /// The key from `X-API-KEY` or `?api_key=`. Never from a cookie: a browser sends cookies
    /// with requests any web page makes, which would let a page write configuration (CSRF).
    private func presentedKey(_ request: Request) -> String? {
        if let header = request.headers[.xAPIKey] { return header }
        if let query = request.uri.queryParameters["api_key"] { return String(query) }
        return nil
    }

    /// Bodies of writes must be JSON. No Content-Type and curl's default
    /// (`application/x-www-form-urlencoded`, which APISIX's documented `curl -d` commands
    /// send) are read as JSON too; anything else a browser form could send is refused.
    static func acceptsBody(contentType: String?) -> Bool {
        guard let contentType else { return true }
        return ASCII.hasPrefix(contentType, "application/json")
            || ASCII.hasPrefix(contentType, "application/x-www-form-urlencoded")
    }

    private func answer(_ request: inout Request) async -> (Int, JSONValue) {
        let failedToken: (String) -> (Int, JSONValue) = {
            (401, ["error_msg": "failed to check token", "description": .string($0)])
        }
        switch keyring.check(presentedKey(request)) {
        case .missing: return failedToken("missing apikey")
        case .wrong: return failedToken("wrong apikey")
        case .allowed(.viewer) where request.method != .get: return failedToken("invalid method for role viewer")
        case .allowed: break
        }
        return await handle(&request, path: request.uri.path)
    }

    /// An authorised request for `path` (`/apisix/admin/...`): the dashboard calls this too,
    /// with its signed-in user's role already checked.
    func handle(_ request: inout Request, path: String) async -> (Int, JSONValue) {
        guard path == "/apisix/admin" || path.hasPrefix("/apisix/admin/") else {
            return (404, ["error_msg": "not found"])
        }
        let segments = path.dropFirst("/apisix/admin".count).split(separator: "/").map(String.init)
        guard let resource = segments.first else { return (404, ["error_msg": "not found"]) }
        var body: JSONValue?
        if request.method == .put || request.method == .post || request.method == .patch {
            guard Self.acceptsBody(contentType: request.headers[.contentType]) else {
                return (
                    415,
                    [
                        "error_msg": .string(
                            "unsupported Content-Type \(request.headers[.contentType] ?? ""): send application/json")
                    ]
                )
            }
            switch await readBody(&request) {
            case .success(let value): body = value
            case .failure(let rejection): return (rejection.status, rejection.body)
            }
        }
        do {
            switch resource {
            case "routes": return try await generic(.routes, request.method, Array(segments.dropFirst()), body, request)
            case "services":
                return try await generic(.services, request.method, Array(segments.dropFirst()), body, request)
            case "upstreams":
                return try await generic(.upstreams, request.method, Array(segments.dropFirst()), body, request)
            case "ssls":
                return try await generic(.ssls, request.method, Array(segments.dropFirst()), body, request)
            case "consumer_groups", "plugin_configs", "global_rules":
                let kind = ResourceKind(rawValue: resource) ?? .globalRules
                if request.method == .post {
                    return (405, ["error_msg": .string("not supported `POST` method for \(kind.singular)")])
                }
                return try await generic(kind, request.method, Array(segments.dropFirst()), body, request)
            case "secrets": return try await secrets(request.method, Array(segments.dropFirst()), body, request)
            case "plugin_metadata":
                return try await metadata(request.method, Array(segments.dropFirst()), body, request)
            case "consumers": return try await consumers(request.method, Array(segments.dropFirst()), body, request)
            case "plugins":
                if segments.count == 2, segments[1] == "list", request.method == .get {
                    return (200, .array(pluginNames.map { .string($0) }))
                }
                return (404, ["error_msg": "not found"])
            default:
                return (404, ["error_msg": .string("Unsupported resource type: \(resource)")])
            }
        } catch {
            return (error.status, error.body)
        }
    }

    /// The OpenAPI document's bytes, made once.
    static let openAPI = ByteBuffer(string: AdminOpenAPI.document)

    /// An `id` sent in a body, as APISIX's `id_schema` allows it: a string or an integer of at
    /// least 1 (anything else was once stored under its JSON text: `null`, `true`, `1.5`).
    static func bodyID(_ value: JSONValue) throws(Rejection) -> String {
        switch value {
        case .string(let text): return text
        case .int(let number) where number >= 1: return String(number)
        default:
            throw .badRequest(
                "invalid configuration: property \"id\" validation failed: expected a string or an integer of at least 1"
            )
        }
    }

    private func readBody(_ request: inout Request) async -> Result<JSONValue, Rejection> {
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: Self.maxBodySize)
        } catch {
            return .failure(Rejection(413, ["error_msg": "request body too large, the limit is 1.5 MiB"]))
        }
        do {
            return .success(try JSONParser.parse(buffer.readableBytesView))
        } catch {
            return .failure(
                Rejection(
                    400,
                    [
                        "error_msg": .string("invalid request body: \(error)"),
                        "req_body": .string(String(buffer: buffer)),
                    ]))
        }
    }

    // MARK: - Envelopes

    /// What the Admin API shows of a stored value: secrets masked (``SensitiveFields``).
    private func shown(_ record: StoredResource) -> JSONValue {
        manager.sensitive.masked(record.kind, record.value)
    }

    private func item(_ record: StoredResource) -> JSONValue {
        [
            "key": .string(record.key), "value": shown(record), "createdIndex": .int(record.createdIndex),
            "modifiedIndex": .int(record.modifiedIndex),
        ]
    }

    private func written(_ record: StoredResource, created: Bool) -> (Int, JSONValue) {
        (created ? 201 : 200, ["key": .string(record.key), "value": shown(record)])
    }

    /// A list as APISIX 3 answers it: `name` and `uri` are regular expressions matched
    /// against the object's name and uri(s), `label` names a label key, `filter` holds
    /// `field=value` pairs (`service_id`, `upstream_id`); `total` counts what the filters kept,
    /// and `page` with `page_size` (10–500) pages it in creation order.
    private func list(_ records: [StoredResource], _ request: Request) throws(Rejection) -> (Int, JSONValue) {
        let params = request.uri.queryParameters
        func regex(_ name: String) throws(Rejection) -> NSRegularExpression? {
            // An empty pattern filters nothing, as in APISIX (NSRegularExpression refuses it).
            guard let text = params[Substring(name)].map(String.init), !text.isEmpty else { return nil }
            do { return try NSRegularExpression(pattern: text) } catch {
                throw .badRequest("invalid regular expression in \(name): \(text)")
            }
        }
        let namePattern = try regex("name")
        let uriPattern = try regex("uri")
        let label = params["label"].map(String.init)
        var fieldFilters: [(String, String)] = []
        if let filter = params["filter"] {
            for pair in filter.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, ["service_id", "upstream_id"].contains(String(parts[0])) else { continue }
                fieldFilters.append((String(parts[0]), String(parts[1]).removingPercentEncoding ?? String(parts[1])))
            }
        }
        // A backtracking pattern (`(a*)*b`) can take exponential time: the whole filtering gets
        // a time budget, checked while a match runs, and a list that exceeds it is refused.
        let deadline = ContinuousClock.now + Self.filterTimeBudget
        var exceeded = false
        func matches(_ regex: NSRegularExpression, _ text: String?) -> Bool {
            guard let text, !exceeded else { return false }
            var found = false
            regex.enumerateMatches(in: text, options: [.reportProgress], range: NSRange(text.startIndex..., in: text)) {
                result, _, stop in
                if result != nil {
                    found = true
                    stop.pointee = true
                } else if ContinuousClock.now > deadline {
                    exceeded = true
                    stop.pointee = true
                }
            }
            return found
        }
        let kept = records.filter { record in
            let value = record.value
            if let namePattern, !matches(namePattern, value["name"]?.stringValue) { return false }
            if let label, value["labels"]?[label] == nil { return false }
            if let uriPattern {
                let uris = [value["uri"]?.stringValue] + (value["uris"]?.arrayValue ?? []).map(\.stringValue)
                if !uris.contains(where: { matches(uriPattern, $0) }) { return false }
            }
            for (field, wanted) in fieldFilters where value[field].map(ConfigValidator.idString) != wanted {
                return false
            }
            return true
        }
        if exceeded {
            throw .badRequest("the regular expressions of this list took longer than \(Self.filterTimeBudget) to match")
        }
        var page = kept
        if let sizeText = params["page_size"], let pageText = params["page"] {
            guard let size = Int(sizeText), (10...500).contains(size) else {
                throw .badRequest("page_size must be between 10 and 500")
            }
            // A page past the end is empty; the skip is bounded before multiplying, so no page
            // number (up to Int.max) can overflow.
            let number = max(1, Int(pageText) ?? 1)
            let skip = min(number - 1, kept.count) * size
            page = Array(kept.dropFirst(skip).prefix(size))
        }
        return (200, ["total": .int(kept.count), "list": .array(page.map(item))])
    }

    private func notFound() -> Rejection { Rejection(404, ["message": "Key not found"]) }
    private func unsupported() -> Rejection { Rejection(404, ["error_msg": "not found"]) }

    private func forbidTimestamps(_ body: JSONValue?) throws(Rejection) {
        for field in ["create_time", "update_time"] where body?[field] != nil {
            throw .badRequest("the property is forbidden:  \(field)")
        }
    }

    // MARK: - Routes, services, upstreams

    private func generic(
        _ kind: ResourceKind, _ method: HTTPRequest.Method, _ rest: [String], _ body: JSONValue?, _ request: Request
    ) async throws(Rejection) -> (Int, JSONValue) {
        let id = rest.first
        let state = await manager.state
        switch method {
        case .get:
            guard let id else { return try list(state.list(kind), request) }
            guard rest.count == 1, let record = state[kind, id] else { throw notFound() }
            return (200, item(record))
        case .put:
            guard rest.count <= 1, var value = body else { throw unsupported() }
            try forbidTimestamps(value)
            var bodyID: String?
            if let raw = value["id"] { bodyID = try Self.bodyID(raw) }
            guard let resolved = id ?? bodyID else { throw .badRequest("missing \(kind.singular) id") }
            if let bodyID, bodyID != resolved { throw .badRequest("wrong \(kind.singular) id") }
            value["id"] = .string(resolved)
            let (record, created) = try await manager.put(kind, id: resolved, value: value)
            return written(record, created: created)
        case .post:
            guard id == nil, var value = body else { throw unsupported() }
            try forbidTimestamps(value)
            if value["id"] != nil { throw .badRequest("wrong \(kind.singular) id, do not need it") }
            let newID = try await manager.nextID()
            value["id"] = .string(newID)
            let (record, created) = try await manager.put(kind, id: newID, value: value)
            return written(record, created: created)
        case .patch:
            guard let id, let patch = body else { throw unsupported() }
            if rest.count == 1 { try forbidTimestamps(patch) }
            let record = try await manager.patch(kind, id: id, subPath: Array(rest.dropFirst()), patch: patch)
            return (200, ["key": .string(record.key), "value": shown(record)])
        case .delete:
            guard let id, rest.count == 1 else { throw unsupported() }
            let deleted = try await manager.delete(kind, id: id)
            return (200, ["deleted": "1", "key": .string(deleted.key)])
        default:
            throw unsupported()
        }
    }

    // MARK: - Consumers and credentials

    private func consumers(_ method: HTTPRequest.Method, _ rest: [String], _ body: JSONValue?, _ request: Request)
        async throws(Rejection) -> (Int, JSONValue)
    {
        if rest.count >= 2, rest[1] == "credentials" {
            return try await credentials(method, username: rest[0], Array(rest.dropFirst(2)), body, request)
        }
        let state = await manager.state
        let username = rest.first
        switch method {
        case .get:
            guard let username else { return try list(state.list(.consumers), request) }
            guard rest.count == 1, let record = state[.consumers, username] else { throw notFound() }
            return (200, item(record))
        case .put:
            guard rest.count <= 1, var value = body else { throw unsupported() }
            try forbidTimestamps(value)
            if let name = value["username"], name.stringValue == nil {
                throw .badRequest(
                    "invalid configuration: property \"username\" validation failed: wrong type: expected string")
            }
            let bodyName = value["username"]?.stringValue
            if let username, let bodyName, bodyName != username { throw .badRequest("wrong username") }
            guard let resolved = username ?? bodyName else {
                throw .badRequest("invalid configuration: property \"username\" is required")
            }
            value["username"] = .string(resolved)
            let (record, created) = try await manager.put(.consumers, id: resolved, value: value)
            return written(record, created: created)
        case .delete:
            guard let username, rest.count == 1 else { throw unsupported() }
            let deleted = try await manager.delete(.consumers, id: username)
            return (200, ["deleted": "1", "key": .string(deleted.key)])
        case .post, .patch:
            throw Rejection(405, ["error_msg": .string("not supported `\(method.rawValue)` method for consumer")])
        default:
            throw unsupported()
        }
    }

    private func credentials(
        _ method: HTTPRequest.Method, username: String, _ rest: [String], _ body: JSONValue?, _ request: Request
    ) async throws(Rejection) -> (Int, JSONValue) {
        if method == .post || method == .patch {
            throw Rejection(405, ["error_msg": .string("not supported `\(method.rawValue)` method for credential")])
        }
        let state = await manager.state
        guard state[.consumers, username] != nil else { throw Rejection(404, ["error_msg": "consumer not found"]) }
        let id = rest.first
        let fullID = id.map { "\(username)/credentials/\($0)" }
        switch method {
        case .get:
            guard let fullID else { return try list(state.credentials(of: username), request) }
            guard rest.count == 1, let record = state[.credentials, fullID] else { throw notFound() }
            return (200, item(record))
        case .put:
            guard rest.count <= 1, var value = body else { throw unsupported() }
            try forbidTimestamps(value)
            var bodyID: String?
            if let raw = value["id"] { bodyID = try Self.bodyID(raw) }
            guard let id = id ?? bodyID else {
                throw .badRequest("missing credential id")
            }
            do { _ = try ResourceSchemas.idSchema.validate(.string(id)) } catch {
                throw .badRequest("invalid configuration: property \"id\" validation failed: \(error.message)")
            }
            value["id"] = .string(id)
            let (record, created) = try await manager.put(
                .credentials, id: "\(username)/credentials/\(id)", value: value)
            return written(record, created: created)
        case .delete:
            guard let fullID, rest.count == 1 else { throw unsupported() }
            let deleted = try await manager.delete(.credentials, id: fullID)
            return (200, ["deleted": "1", "key": .string(deleted.key)])
        default:
            throw unsupported()
        }
    }

    // MARK: - Secrets

    /// `/secrets/<manager>/<id>`; the stored id is `<manager>/<id>` as in APISIX.
    private func secrets(_ method: HTTPRequest.Method, _ rest: [String], _ body: JSONValue?, _ request: Request)
        async throws(Rejection) -> (Int, JSONValue)
    {
        let state = await manager.state
        if method == .get && rest.count <= 1 {
            let all = state.list(.secrets)
            return try list(rest.isEmpty ? all : all.filter { $0.id.hasPrefix("\(rest[0])/") }, request)
        }
        guard rest.count == 2 || (rest.count > 2 && method == .patch) else {
            if method == .put || method == .delete { throw .badRequest("no secret id") }
            throw unsupported()
        }
        let id = "\(rest[0])/\(rest[1])"
        switch method {
        case .get:
            guard let record = state[.secrets, id] else { throw notFound() }
            return (200, item(record))
        case .put:
            guard var value = body else { throw unsupported() }
            try forbidTimestamps(value)
            value["id"] = .string(id)
            let (record, created) = try await manager.put(.secrets, id: id, value: value)
            return written(record, created: created)
        case .patch:
            guard let patch = body else { throw unsupported() }
            if rest.count == 2 { try forbidTimestamps(patch) }
            let record = try await manager.patch(.secrets, id: id, subPath: Array(rest.dropFirst(2)), patch: patch)
            return (200, ["key": .string(record.key), "value": shown(record)])
        case .delete:
            let deleted = try await manager.delete(.secrets, id: id)
            return (200, ["deleted": "1", "key": .string(deleted.key)])
        default:
            throw unsupported()
        }
    }

    // MARK: - Plugin metadata

    private func metadata(_ method: HTTPRequest.Method, _ rest: [String], _ body: JSONValue?, _ request: Request)
        async throws(Rejection) -> (Int, JSONValue)
    {
        let state = await manager.state
        let name = rest.first
        switch method {
        case .get:
            guard let name else { return try list(state.list(.pluginMetadata), request) }
            guard let record = state[.pluginMetadata, name] else { throw notFound() }
            return (200, item(record))
        case .put:
            guard let name, rest.count == 1, var value = body else { throw unsupported() }
            try forbidTimestamps(value)
            value["id"] = nil
            let (record, created) = try await manager.put(.pluginMetadata, id: name, value: value)
            return written(record, created: created)
        case .delete:
            guard let name, rest.count == 1 else { throw unsupported() }
            let deleted = try await manager.delete(.pluginMetadata, id: name)
            return (200, ["deleted": "1", "key": .string(deleted.key)])
        default:
            throw unsupported()
        }
    }
}

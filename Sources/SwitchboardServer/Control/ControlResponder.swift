import HTTPTypes
import Hummingbird
import SwitchboardCore

/// The control API (APISIX's port 9090, loopback by default): `GET /v1/healthcheck` lists every
/// checked instance with its health, `GET /v1/healthcheck/routes/<id>` one route's.
public struct ControlResponder: HTTPResponder {
    public typealias Context = GatewayRequestContext
    let health: HealthRegistry

    public init(health: HealthRegistry) {
        self.health = health
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        guard request.method == .get else {
            return GatewayResponse.json(.methodNotAllowed, ["error_msg": "only GET is supported"])
        }
        let path = request.uri.path
        if path == "/v1/healthcheck" {
            return GatewayResponse.json(.ok, .array(health.checked().map { $0.describe() }))
        }
        let prefix = "/v1/healthcheck/routes/"
        if path.hasPrefix(prefix) {
            let id = String(path.dropFirst(prefix.count))
            let entries = health.checked().filter { $0.routeID == id }
            if entries.isEmpty {
                return GatewayResponse.json(.notFound, ["error_msg": .string("no health checker for route \(id)")])
            }
            return GatewayResponse.json(.ok, .array(entries.map { $0.describe() }))
        }
        return GatewayResponse.json(.notFound, ["error_msg": "not found"])
    }
}

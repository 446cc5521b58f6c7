import HTTPTypes
import Hummingbird
import SwitchboardCore
import SwitchboardStore

/// The control API (APISIX's port 9090, loopback by default): `GET /v1/healthcheck` lists every
/// checked instance with its health, `GET /v1/healthcheck/routes/<id>` one route's, and
/// `GET /v1/cluster` the nodes sharing this node's store. Probes: `GET /v1/healthz` (the process
/// answers: alive) and `GET /v1/ready` (503 while listeners start or the gateway drains).
public struct ControlResponder: HTTPResponder {
    public typealias Context = GatewayRequestContext
    let health: HealthRegistry
    let cluster: (any ClusterMembership)?
    let node: ClusterNode
    let storeLocation: String
    /// Nodes that heartbeated within this long are listed.
    let window: Duration
    /// Why the gateway is not ready (`nil`: ready).
    let readiness: @Sendable () -> String?

    init(
        health: HealthRegistry, cluster: (any ClusterMembership)?, node: ClusterNode, storeLocation: String,
        window: Duration, readiness: @escaping @Sendable () -> String? = { nil }
    ) {
        self.readiness = readiness
        self.health = health
        self.cluster = cluster
        self.node = node
        self.storeLocation = storeLocation
        self.window = window
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        guard request.method == .get else {
            return GatewayResponse.json(.methodNotAllowed, ["error_msg": "only GET is supported"])
        }
        let path = request.uri.path
        if path == "/v1/healthz" { return GatewayResponse.json(.ok, ["status": "ok"]) }
        if path == "/v1/ready" {
            guard let problem = readiness() else { return GatewayResponse.json(.ok, ["status": "ready"]) }
            return GatewayResponse.json(.serviceUnavailable, ["status": "not ready", "reason": .string(problem)])
        }
        if path == "/v1/cluster" { return await clusterView() }
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

    /// Every node, its last heartbeat and the revision it has applied; `behind` when that is
    /// older than the database's. Without a shared store: this node alone.
    private func clusterView() async -> Response {
        let (status, view) = await clusterJSON()
        return GatewayResponse.json(status, view)
    }

    /// The cluster view and its status (the dashboard shows it too).
    func clusterJSON() async -> (HTTPResponse.Status, JSONValue) {
        guard let cluster else {
            let single: JSONValue = [
                "store": .string(storeLocation), "cluster": false,
                "nodes": [describe(node, behind: false, heartbeat: nil)],
            ]
            return (.ok, single)
        }
        let seconds = Double(window.components.seconds) + Double(window.components.attoseconds) / 1e18
        do {
            let (nodes, revision) = try await cluster.members(within: seconds)
            let view: JSONValue = [
                "store": .string(storeLocation), "cluster": true, "revision": .int(Int(revision)),
                "nodes": .array(nodes.map { describe($0, behind: $0.revision < revision, heartbeat: $0.heartbeatAt) }),
            ]
            return (.ok, view)
        } catch {
            return (.serviceUnavailable, ["error_msg": .string("configuration store unavailable: \(error)")])
        }
    }

    private func describe(_ member: ClusterNode, behind: Bool, heartbeat: Double?) -> JSONValue {
        [
            "id": .string(member.id), "address": .string(member.address), "version": .string(member.version),
            "started_at": .double(member.startedAt), "last_heartbeat": heartbeat.map { .double($0) } ?? .null,
            "revision": member.revision >= 0 ? .int(Int(member.revision)) : .null, "behind": .bool(behind),
            "self": .bool(member.id == node.id),
        ]
    }
}

import HTTPTypes
import Hummingbird
import NIOCore

/// Serves the Prometheus text exposition at the configured path (APISIX's
/// `/apisix/prometheus/metrics` on 127.0.0.1:9091 by default).
public struct MetricsResponder: HTTPResponder {
    public typealias Context = GatewayRequestContext
    let metrics: GatewayMetrics
    let health: HealthRegistry
    let path: String

    public func respond(to request: Request, context: Context) async throws -> Response {
        guard request.uri.path == path else {
            return GatewayResponse.json(.notFound, ["error_msg": "not found"])
        }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: metrics.exposition(health: health))))
    }
}

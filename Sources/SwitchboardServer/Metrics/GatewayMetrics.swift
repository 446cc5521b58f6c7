import CoreMetrics
import Foundation
import Prometheus
import SwitchboardCore

/// The gateway's metrics: APISIX's names, labels and buckets (so existing dashboards work) plus
/// Switchboard's own. Recorded through swift-metrics with a per-gateway swift-prometheus factory
/// (no process-global bootstrap, so several gateways can live in one test process) and exposed
/// in the Prometheus text format.
public final class GatewayMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    static let latencyBuckets: [Double] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000]
    static let tokenBuckets: [Double] = [
        1, 10, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100_000, 200_000, 500_000, 1_000_000,
    ]
    static let overheadBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
        .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250),
    ]

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.valueHistogramBuckets = [
            "apisix_llm_latency": Self.latencyBuckets, "apisix_http_latency": Self.latencyBuckets,
            "apisix_llm_prompt_tokens_dist": Self.tokenBuckets, "apisix_llm_completion_tokens_dist": Self.tokenBuckets,
        ]
        factory.durationHistogramBuckets = ["switchboard_gateway_overhead_seconds": Self.overheadBuckets]
        self.factory = factory
    }

    /// Label values are bounded: long values (model names) are cut at 128 bytes.
    static func bounded(_ value: String?) -> String {
        guard let value else { return "" }
        if value.utf8.count <= 128 { return value }
        return String(decoding: Array(value.utf8.prefix(128)), as: UTF8.self)
    }

    struct LLMLabels {
        var routeID: String
        var serviceID: String
        var consumer: String
        var node: String
        var requestType: String
        var requestModel: String
        var model: String

        var list: [(String, String)] {
            [
                ("route_id", routeID), ("service_id", serviceID), ("consumer", consumer), ("node", node),
                ("request_type", requestType), ("request_llm_model", requestModel), ("llm_model", model),
            ]
        }
    }

    func llmLabels(_ x: Exchange, node: String? = nil) -> LLMLabels {
        LLMLabels(
            routeID: x.route?.id ?? "", serviceID: x.route?.serviceID ?? "", consumer: x.consumer?.username ?? "",
            node: Self.bounded(node ?? x.logValues["picked_instance"]),
            requestType: x.logValues["request_type"] ?? "traditional_http",
            requestModel: Self.bounded(x.logValues["request_llm_model"]), model: Self.bounded(x.logValues["llm_model"]))
    }

    /// The active-connections series of one attempt (same labels for +1 and −1, so it returns to 0).
    func activeConnections(_ x: Exchange, node: String) -> Meter {
        let l = llmLabels(x, node: node)
        let dimensions: [(String, String)] = [
            ("route", x.route?.name ?? ""), ("route_id", l.routeID), ("matched_uri", x.path),
            ("matched_host", x.host), ("service", ""), ("service_id", l.serviceID), ("consumer", l.consumer),
            ("node", l.node), ("request_type", l.requestType), ("request_llm_model", l.requestModel),
            ("llm_model", l.model),
        ]
        return Meter(label: "apisix_llm_active_connections", dimensions: dimensions, factory: factory)
    }

    func fallback(routeID: String, from: String, to: String, reason: String) {
        Counter(
            label: "switchboard_llm_fallbacks_total",
            dimensions: [("route_id", routeID), ("from", from), ("to", to), ("reason", reason)], factory: factory
        ).increment()
    }

    func rateLimitRejection(routeID: String, consumer: String, instance: String) {
        Counter(
            label: "switchboard_ratelimit_rejections_total",
            dimensions: [("route_id", routeID), ("consumer", consumer), ("instance", instance)], factory: factory
        ).increment()
    }

    func streamError(reason: String) {
        Counter(label: "switchboard_stream_errors_total", dimensions: [("reason", reason)], factory: factory)
            .increment()
    }

    /// The log phase of every data-plane request.
    func record(_ x: Exchange) {
        let node = x.logValues["picked_instance"] ?? x.upstreamAddr ?? ""
        let route = x.route?.id ?? ""
        let consumer = x.consumer?.username ?? ""
        let requestType = x.logValues["request_type"] ?? "traditional_http"
        let l = llmLabels(x)
        let http: [(String, String)] = [
            ("code", String(x.status)), ("route", route), ("matched_uri", x.route == nil ? "" : x.path),
            ("matched_host", x.host), ("service", x.route?.serviceID ?? ""), ("consumer", consumer),
            ("node", Self.bounded(node)), ("request_type", requestType), ("request_llm_model", l.requestModel),
            ("llm_model", l.model),
        ]
        Counter(label: "apisix_http_status", dimensions: http, factory: factory).increment()
        let base: [(String, String)] = [
            ("route", route), ("service", x.route?.serviceID ?? ""), ("consumer", consumer),
            ("node", Self.bounded(node)),
        ]
        let elapsedMs = Double(AIProxyHandler.milliseconds(x.elapsed))
        Recorder(
            label: "apisix_http_latency", dimensions: [("type", "request")] + base, aggregate: true, factory: factory
        )
        .record(elapsedMs)
        if let upstream = x.upstreamResponseTime {
            Recorder(
                label: "apisix_http_latency", dimensions: [("type", "upstream")] + base, aggregate: true,
                factory: factory
            )
            .record(Double(AIProxyHandler.milliseconds(upstream)))
        }
        let requestBytes =
            x.request.headers[.contentLength].flatMap(Int64.init) ?? Int64(x.bufferedBody?.readableBytes ?? 0)
        Counter(label: "apisix_bandwidth", dimensions: [("type", "ingress")] + base, factory: factory)
            .increment(by: requestBytes)
        Counter(label: "apisix_bandwidth", dimensions: [("type", "egress")] + base, factory: factory)
            .increment(by: Int64(x.bodyBytesSent))
        if let overhead = x.gatewayOverhead {
            Timer(label: "switchboard_gateway_overhead_seconds", dimensions: [("route_id", route)], factory: factory)
                .recordNanoseconds(Int64(overhead / .nanoseconds(1)))
        }
        guard requestType != "traditional_http" else { return }
        let prompt = Int64(x.logValues["llm_prompt_tokens"] ?? "") ?? 0
        let completion = Int64(x.logValues["llm_completion_tokens"] ?? "") ?? 0
        Counter(label: "apisix_llm_prompt_tokens", dimensions: l.list, factory: factory).increment(by: prompt)
        Counter(label: "apisix_llm_completion_tokens", dimensions: l.list, factory: factory).increment(by: completion)
        Recorder(label: "apisix_llm_prompt_tokens_dist", dimensions: l.list, aggregate: true, factory: factory)
            .record(prompt)
        Recorder(label: "apisix_llm_completion_tokens_dist", dimensions: l.list, aggregate: true, factory: factory)
            .record(completion)
        guard x.status < 400 else { return }
        if let total = x.logValues["apisix_upstream_response_time"].flatMap(Double.init) {
            Recorder(
                label: "apisix_llm_latency", dimensions: [("type", "total")] + l.list, aggregate: true, factory: factory
            )
            .record(total)
        }
        if requestType == "ai_stream", let ttft = x.logValues["llm_time_to_first_token"].flatMap(Double.init), ttft > 0
        {
            Recorder(
                label: "apisix_llm_latency", dimensions: [("type", "ttft")] + l.list, aggregate: true, factory: factory
            )
            .record(ttft)
        }
    }

    /// The text exposition, with instance health sampled now.
    public func exposition(health: HealthRegistry) -> [UInt8] {
        for instance in health.all() {
            Gauge(
                label: "switchboard_llm_instance_health",
                dimensions: [("route_id", instance.routeID ?? ""), ("node", Self.bounded(instance.instance))],
                factory: factory
            ).record(instance.isAvailable() ? 1 : 0)
        }
        return registry.emitToBuffer()
    }
}

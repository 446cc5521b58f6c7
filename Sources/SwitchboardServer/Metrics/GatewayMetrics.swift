import CoreMetrics
import Foundation
import Prometheus
import SwitchboardCore
import Synchronization

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
            requestModel: x.logValues[ModelList.requestLabelKey] ?? "",
            model: x.logValues[ModelList.modelLabelKey] ?? "")
    }

    /// The active-connections series of one attempt (same labels for +1 and −1, so it returns
    /// to 0); cached per label set like the log-phase series.
    func activeConnections(_ x: Exchange, node: String) -> Meter {
        let l = llmLabels(x, node: node)
        let values = [
            x.route?.name ?? "", l.routeID, Self.bounded(x.route?.uriPattern), Self.bounded(x.route?.hostPattern),
            l.serviceID, l.consumer, l.node,
            l.requestType,
            l.requestModel, l.model,
        ]
        return meters.get(values) {
            let dimensions: [(String, String)] = [
                ("route", values[0]), ("route_id", values[1]), ("matched_uri", values[2]), ("matched_host", values[3]),
                ("service", ""), ("service_id", values[4]), ("consumer", values[5]), ("node", values[6]),
                ("request_type", values[7]), ("request_llm_model", values[8]), ("llm_model", values[9]),
            ]
            return Meter(label: "apisix_llm_active_connections", dimensions: dimensions, factory: factory)
        }
    }

    /// Increments a counter of rare events (fallbacks, retries, rejections): made per event,
    /// unlike the per-request series, which are cached.
    private func increment(_ label: String, _ dimensions: [(String, String)], by amount: Int64 = 1) {
        Counter(label: label, dimensions: dimensions, factory: factory).increment(by: amount)
    }

    func fallback(routeID: String, from: String, to: String, reason: String) {
        increment(
            "switchboard_llm_fallbacks_total", [("route_id", routeID), ("from", from), ("to", to), ("reason", reason)])
    }

    /// An access log line dropped because the writer's buffer was full (a stalled disk).
    func accessLogLineDropped() {
        increment("switchboard_access_log_dropped_total", [])
    }

    func rateLimitRejection(routeID: String, consumer: String, instance: String) {
        increment(
            "switchboard_ratelimit_rejections_total",
            [("route_id", routeID), ("consumer", consumer), ("instance", instance)])
    }

    /// One failed attempt, by error class (issue 8).
    func attemptFailure(routeID: String, node: String, errorClass: ErrorClass) {
        increment(
            "switchboard_llm_attempt_failures_total",
            [("route_id", routeID), ("node", Self.bounded(node)), ("class", errorClass.rawValue)])
    }

    /// Same-instance retries after a retryable failure.
    func retry(routeID: String, node: String, errorClass: ErrorClass) {
        increment(
            "switchboard_llm_retries_total",
            [("route_id", routeID), ("node", Self.bounded(node)), ("class", errorClass.rawValue)])
    }

    /// Stream continuations after a break: `outcome` is `continued` or `failed`.
    func continuation(routeID: String, node: String, outcome: String) {
        increment(
            "switchboard_llm_stream_continuations_total",
            [("route_id", routeID), ("node", Self.bounded(node)), ("outcome", outcome)])
    }

    /// Upstream stream events that were not valid JSON (dropped, the relay went on).
    func malformedEvents(routeID: String, node: String, count: Int) {
        increment(
            "switchboard_stream_malformed_events_total", [("route_id", routeID), ("node", Self.bounded(node))],
            by: Int64(count))
    }

    func streamError(reason: String) {
        increment("switchboard_stream_errors_total", [("reason", reason)])
    }

    /// The handles one request's log phase records into. Creating a swift-metrics handle is a
    /// registry lookup under a lock plus label validation (~7 % of a chat request's CPU when done
    /// ten times per request), so handles are made once per label set and reused.
    final class HTTPSeries: Sendable {
        let status: CoreMetrics.Counter
        let requestLatency: CoreMetrics.Recorder
        let upstreamLatency: CoreMetrics.Recorder
        let ingress: CoreMetrics.Counter
        let egress: CoreMetrics.Counter
        let overhead: CoreMetrics.Timer

        init(code: String, key: HTTPKey, factory: PrometheusMetricsFactory) {
            let http: [(String, String)] = [
                ("code", code), ("route", key.route), ("matched_uri", key.uri), ("matched_host", key.host),
                ("service", key.service), ("consumer", key.consumer), ("node", key.node),
                ("request_type", key.requestType), ("request_llm_model", key.requestModel), ("llm_model", key.model),
            ]
            status = Counter(label: "apisix_http_status", dimensions: http, factory: factory)
            let base: [(String, String)] = [
                ("route", key.route), ("service", key.service), ("consumer", key.consumer), ("node", key.node),
            ]
            requestLatency = Recorder(
                label: "apisix_http_latency", dimensions: [("type", "request")] + base, aggregate: true,
                factory: factory)
            upstreamLatency = Recorder(
                label: "apisix_http_latency", dimensions: [("type", "upstream")] + base, aggregate: true,
                factory: factory)
            ingress = Counter(label: "apisix_bandwidth", dimensions: [("type", "ingress")] + base, factory: factory)
            egress = Counter(label: "apisix_bandwidth", dimensions: [("type", "egress")] + base, factory: factory)
            overhead = Timer(
                label: "switchboard_gateway_overhead_seconds", dimensions: [("route_id", key.route)], factory: factory)
        }
    }

    /// The LLM series of one (route, consumer, instance, model) combination.
    final class LLMSeries: Sendable {
        let promptTokens: CoreMetrics.Counter
        let completionTokens: CoreMetrics.Counter
        /// Prompt tokens served from the provider's cache and written to it (Anthropic's
        /// `cache_read_input_tokens` / `cache_creation_input_tokens`, OpenAI's `cached_tokens`).
        let cacheReadTokens: CoreMetrics.Counter
        let cacheCreationTokens: CoreMetrics.Counter
        let promptDist: CoreMetrics.Recorder
        let completionDist: CoreMetrics.Recorder
        let totalLatency: CoreMetrics.Recorder
        let ttft: CoreMetrics.Recorder

        init(labels: [(String, String)], factory: PrometheusMetricsFactory) {
            promptTokens = Counter(label: "apisix_llm_prompt_tokens", dimensions: labels, factory: factory)
            completionTokens = Counter(label: "apisix_llm_completion_tokens", dimensions: labels, factory: factory)
            cacheReadTokens = Counter(
                label: "switchboard_llm_cache_read_input_tokens", dimensions: labels, factory: factory)
            cacheCreationTokens = Counter(
                label: "switchboard_llm_cache_creation_input_tokens", dimensions: labels, factory: factory)
            promptDist = Recorder(
                label: "apisix_llm_prompt_tokens_dist", dimensions: labels, aggregate: true, factory: factory)
            completionDist = Recorder(
                label: "apisix_llm_completion_tokens_dist", dimensions: labels, aggregate: true, factory: factory)
            totalLatency = Recorder(
                label: "apisix_llm_latency", dimensions: [("type", "total")] + labels, aggregate: true, factory: factory
            )
            ttft = Recorder(
                label: "apisix_llm_latency", dimensions: [("type", "ttft")] + labels, aggregate: true, factory: factory)
        }
    }

    struct HTTPKey: Hashable {
        var code: Int
        var route: String
        var uri: String
        var host: String
        var service: String
        var consumer: String
        var node: String
        var requestType: String
        var requestModel: String
        var model: String
    }

    private let httpSeries = HandleCache<HTTPKey, HTTPSeries>()
    private let llmSeries = HandleCache<[String], LLMSeries>()
    private let meters = HandleCache<[String], Meter>()

    func series(_ key: HTTPKey) -> HTTPSeries {
        httpSeries.get(key) { HTTPSeries(code: String(key.code), key: key, factory: factory) }
    }

    func series(_ labels: LLMLabels) -> LLMSeries {
        let key = [
            labels.routeID, labels.serviceID, labels.consumer, labels.node, labels.requestType, labels.requestModel,
            labels.model,
        ]
        return llmSeries.get(key) { LLMSeries(labels: labels.list, factory: factory) }
    }

    /// The log phase of every data-plane request.
    func record(_ x: Exchange) {
        let node = x.logValues["picked_instance"] ?? x.upstreamAddr ?? ""
        let requestType = x.logValues["request_type"] ?? "traditional_http"
        let l = llmLabels(x)
        let http = series(
            HTTPKey(
                code: x.status, route: x.route?.id ?? "", uri: Self.bounded(x.route?.uriPattern),
                host: Self.bounded(x.route?.hostPattern),
                service: x.route?.serviceID ?? "", consumer: x.consumer?.username ?? "", node: Self.bounded(node),
                requestType: requestType, requestModel: l.requestModel, model: l.model))
        http.status.increment()
        http.requestLatency.record(Double(AIProxyHandler.milliseconds(x.elapsed)))
        if let upstream = x.upstreamResponseTime {
            http.upstreamLatency.record(Double(AIProxyHandler.milliseconds(upstream)))
        }
        let requestBytes =
            x.request.headers[.contentLength].flatMap(Int64.init) ?? Int64(x.bufferedBody?.readableBytes ?? 0)
        http.ingress.increment(by: requestBytes)
        http.egress.increment(by: Int64(x.bodyBytesSent))
        if let overhead = x.gatewayOverhead {
            http.overhead.recordNanoseconds(Int64(overhead / .nanoseconds(1)))
        }
        guard requestType != "traditional_http" else { return }
        let llm = series(l)
        let prompt = Int64(x.logValues["llm_prompt_tokens"] ?? "") ?? 0
        let completion = Int64(x.logValues["llm_completion_tokens"] ?? "") ?? 0
        llm.promptTokens.increment(by: prompt)
        llm.completionTokens.increment(by: completion)
        if let read = x.logValues["llm_cache_read_input_tokens"].flatMap(Int64.init), read > 0 {
            llm.cacheReadTokens.increment(by: read)
        }
        if let created = x.logValues["llm_cache_creation_input_tokens"].flatMap(Int64.init), created > 0 {
            llm.cacheCreationTokens.increment(by: created)
        }
        llm.promptDist.record(prompt)
        llm.completionDist.record(completion)
        guard x.status < 400 else { return }
        if let total = x.logValues["apisix_upstream_response_time"].flatMap(Double.init) {
            llm.totalLatency.record(total)
        }
        if requestType == "ai_stream", let ttft = x.logValues["llm_time_to_first_token"].flatMap(Double.init), ttft > 0
        {
            llm.ttft.record(ttft)
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
            if let state = instance.breakerState {
                Gauge(
                    label: "switchboard_llm_instance_breaker_state",
                    dimensions: [("route_id", instance.routeID ?? ""), ("node", Self.bounded(instance.instance))],
                    factory: factory
                ).record(state == "closed" ? 0 : state == "open" ? 1 : 2)
            }
        }
        return registry.emitToBuffer()
    }
}

/// Metric handles by label set, made on first use. Bounded: a label set explosion (many hosts or
/// paths) empties the cache instead of growing it; the registry keeps the series either way.
final class HandleCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    static var limit: Int { 4096 }
    private let entries = Mutex<[Key: Value]>([:])

    func get(_ key: Key, make: () -> Value) -> Value {
        if let found = entries.withLock({ $0[key] }) { return found }
        let made = make()
        entries.withLock {
            if $0.count >= Self.limit { $0.removeAll(keepingCapacity: true) }
            $0[key] = made
        }
        return made
    }
}

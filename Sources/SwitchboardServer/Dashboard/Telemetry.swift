import Foundation
import SwitchboardCore
import Synchronization

/// What the dashboard shows of traffic, kept by the gateway in fixed memory: per route and
/// instance, per-minute buckets for the last hour and 15-minute buckets for the last day
/// (``RequestSeries``), and the last `traceCapacity` requests with their attempts
/// (``RequestTrace``, no payloads). Written once per request in the log phase — after the
/// response's last byte — with one short lock each; read by the dashboard.
///
/// Memory: a route-instance's series is 157 buckets of about 400 bytes (62 KB), made when it
/// first sees traffic; at most `maxSeriesKeys` of them (further pairs are counted under
/// route `(other)`). A trace is about 300 bytes plus 60 per attempt.
public final class Telemetry: Sendable {
    struct Key: Hashable, Sendable {
        var route: String
        var instance: String
    }

    private let series = Mutex<[Key: RequestSeries]>([:])
    private let traces: Mutex<RingBuffer<RequestTrace>>
    /// `dashboard.trace_size: 0` keeps no traces.
    let keepsTraces: Bool
    let maxSeriesKeys: Int
    /// The clock, in seconds since 1970 (tests move it).
    let now: @Sendable () -> Double

    public init(
        traceCapacity: Int = 1000, maxSeriesKeys: Int = 200,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.traces = Mutex(RingBuffer(capacity: traceCapacity))
        self.keepsTraces = traceCapacity > 0
        self.maxSeriesKeys = max(1, maxSeriesKeys)
        self.now = now
    }

    /// Records one finished request.
    func record(_ x: Exchange) {
        let time = now()
        let instance = x.logValues["picked_instance"] ?? x.upstreamAddr ?? ""
        let failed = x.status >= 400
        let errorClass = failed ? (x.logValues["llm_error_class"] ?? "other") : nil
        let prompt = x.logValues["llm_prompt_tokens"].flatMap { Int($0) }
        let completion = x.logValues["llm_completion_tokens"].flatMap { Int($0) }
        let ttft = x.logValues["llm_time_to_first_token"].flatMap { Int($0) }
        let durationMs = AIProxyHandler.milliseconds(x.elapsed)
        let sample = SeriesSample(
            failed: failed, errorClass: errorClass, promptTokens: prompt ?? 0, completionTokens: completion ?? 0,
            ttftMs: ttft.map(Double.init), durationMs: Double(durationMs))
        var key = Key(route: x.route?.id ?? "", instance: instance)
        let failedAttempts = (x.ai?.attemptTrace ?? []).compactMap { a in a.errorClass.map { (a.instance, $0) } }
        series.withLock { series in
            if series[key] == nil && series.count >= maxSeriesKeys { key = Key(route: "(other)", instance: "") }
            series[key, default: RequestSeries()].add(sample, at: Int(time))
            for (attempted, errorClass) in failedAttempts {
                var attemptKey = Key(route: x.route?.id ?? "", instance: attempted)
                if series[attemptKey] == nil && series.count >= maxSeriesKeys {
                    attemptKey = Key(route: "(other)", instance: "")
                }
                series[attemptKey, default: RequestSeries()].addAttemptFailure(errorClass, at: Int(time))
            }
        }
        guard keepsTraces else { return }
        let trace = RequestTrace(
            requestID: x.requestID, time: time, method: x.method, path: x.path, routeID: x.route?.id,
            consumer: x.consumer?.username, status: x.status, modelAsked: x.ai?.clientModel,
            modelServed: x.logValues["llm_model"], instance: instance.isEmpty ? nil : instance,
            promptTokens: prompt, completionTokens: completion, ttftMs: ttft, durationMs: durationMs,
            errorClass: x.logValues["llm_error_class"], attempts: x.ai?.attemptTrace ?? [])
        traces.withLock { $0.append(trace) }
    }

    /// The time window of an overview.
    public enum Window: String, Sendable {
        case lastQuarterHour = "15m"
        case lastDay = "24h"
    }

    /// Points of `window` (oldest first) summed over the route-instance pairs that `route`
    /// and `instance` select (all when `nil`): rates per second, errors by class, p50/p95 of
    /// TTFT and duration.
    func overview(_ window: Window, route: String? = nil, instance: String? = nil) -> JSONValue {
        let end = Int(now())
        let selected = series.withLock { series in
            series.filter {
                (route == nil || $0.key.route == route) && (instance == nil || $0.key.instance == instance)
            }
            .map(\.value)
        }
        let span: Int
        var points: [(start: Int, bucket: SeriesBucket)] = []
        for one in selected {
            let buckets =
                window == .lastQuarterHour
                ? one.minutes.buckets(from: end - 14 * 60, to: end) : one.quarters.buckets(from: end - 86400, to: end)
            if points.isEmpty {
                points = buckets
            } else {
                for i in points.indices where i < buckets.count { points[i].bucket.add(buckets[i].bucket) }
            }
        }
        span = window == .lastQuarterHour ? 60 : 900
        if points.isEmpty {
            let ring =
                window == .lastQuarterHour ? BucketRing(span: 60, capacity: 60) : BucketRing(span: 900, capacity: 97)
            points = ring.buckets(from: window == .lastQuarterHour ? end - 14 * 60 : end - 86400, to: end)
        }
        var total = SeriesBucket()
        for point in points { total.add(point.bucket) }
        return [
            "window": .string(window.rawValue), "span_seconds": .int(span),
            "points": .array(points.map { Self.point($0.start, $0.bucket, span: span) }),
            "total": Self.point(points.first?.start ?? end, total, span: span * max(1, points.count)),
        ]
    }

    static func point(_ start: Int, _ bucket: SeriesBucket, span: Int) -> JSONValue {
        let seconds = Double(max(1, span))
        var errors = JSONObject()
        for (i, name) in SeriesBucket.errorClasses.enumerated() where bucket.errorsByClass[i] > 0 {
            errors[name] = .int(Int(bucket.errorsByClass[i]))
        }
        let quantile = { (h: LatencyHistogram, q: Double) -> JSONValue in h.quantile(q).map { .double($0) } ?? .null }
        return [
            "start": .int(start), "requests": .int(Int(bucket.requests)),
            "requests_per_second": .double(Double(bucket.requests) / seconds),
            "prompt_tokens_per_second": .double(Double(bucket.promptTokens) / seconds),
            "completion_tokens_per_second": .double(Double(bucket.completionTokens) / seconds),
            "errors": .int(Int(bucket.errors)),
            "error_rate": bucket.requests == 0 ? .double(0) : .double(Double(bucket.errors) / Double(bucket.requests)),
            "errors_by_class": .object(errors),
            "ttft_p50_ms": quantile(bucket.ttft, 0.5), "ttft_p95_ms": quantile(bucket.ttft, 0.95),
            "latency_p50_ms": quantile(bucket.duration, 0.5), "latency_p95_ms": quantile(bucket.duration, 0.95),
        ]
    }

    /// The failed attempts on a route-instance over the last 15 minutes, by error class.
    func recentErrors(route: String, instance: String) -> JSONObject {
        let end = Int(now())
        guard let one = series.withLock({ $0[Key(route: route, instance: instance)] }) else { return [:] }
        var total = SeriesBucket()
        for point in one.minutes.buckets(from: end - 14 * 60, to: end) { total.add(point.bucket) }
        var errors = JSONObject()
        for (i, name) in SeriesBucket.errorClasses.enumerated() where total.attemptFailuresByClass[i] > 0 {
            errors[name] = .int(Int(total.attemptFailuresByClass[i]))
        }
        return errors
    }

    /// The newest traces (at most `limit`), or the one with `requestID`.
    func traces(limit: Int, requestID: String? = nil) -> [RequestTrace] {
        let all = traces.withLock { $0.newestFirst }
        if let requestID { return all.filter { $0.requestID == requestID } }
        return Array(all.prefix(max(0, limit)))
    }
}

extension RequestTrace {
    var json: JSONValue {
        var object: JSONObject = [
            "request_id": .string(requestID), "time": .double(time), "method": .string(method), "path": .string(path),
            "status": .int(status), "duration_ms": .int(durationMs),
        ]
        let optional: [(String, JSONValue?)] = [
            ("route_id", routeID.map { .string($0) }), ("consumer", consumer.map { .string($0) }),
            ("model_asked", modelAsked.map { .string($0) }), ("model_served", modelServed.map { .string($0) }),
            ("instance", instance.map { .string($0) }), ("prompt_tokens", promptTokens.map { .int($0) }),
            ("completion_tokens", completionTokens.map { .int($0) }), ("ttft_ms", ttftMs.map { .int($0) }),
            ("error_class", errorClass.map { .string($0) }),
        ]
        for (name, value) in optional { object[name] = value ?? .null }
        object["attempts"] = .array(
            attempts.map { attempt in
                [
                    "instance": .string(attempt.instance),
                    "error_class": attempt.errorClass.map { .string($0) } ?? .null,
                    "status": .int(attempt.status), "duration_ms": .int(attempt.durationMs),
                    "retry_wait_ms": attempt.retryWaitMs.map { .int($0) } ?? .null,
                ]
            })
        return .object(object)
    }
}

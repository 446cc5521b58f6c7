import Foundation
import SwitchboardCore
import Synchronization

/// What the dashboard shows of traffic, kept by the gateway in fixed memory: per route and
/// instance, per-minute buckets for the last hour and 15-minute buckets for the last day
/// (``RequestSeries``), and the last `traceCapacity` requests with their attempts
/// (``RequestTrace``, no payloads). Written once per request in the log phase — after the
/// response's last byte — with one short lock each; read by the dashboard.
///
/// Memory: see the README's "Dashboard" (measured per route-instance and per trace). A
/// route-instance's series is made when it first sees traffic; at most `maxSeriesKeys` of them
/// (further pairs are counted under route `(other)`).
public final class Telemetry: Sendable {
    struct Key: Hashable, Sendable {
        var route: String
        var instance: String
    }

    /// One stripe of the series. Requests finish on every event loop at once: each thread
    /// writes to its own stripe (by thread identity), so the log phase does not wait for another
    /// thread's lock; readers merge the stripes.
    final class Stripe: Sendable {
        let series = Mutex<[Key: RequestSeries]>([:])
    }

    static let stripeCount = 8
    private let stripes: [Stripe]
    /// The last requests: one ring, so it holds exactly `traceCapacity` (its lock is held for
    /// one assignment; the request it pushes out is released after).
    private let traces: Mutex<RingBuffer<RequestTrace>>
    let traceCapacity: Int
    /// `dashboard.trace_size: 0` keeps no traces.
    let keepsTraces: Bool
    let maxSeriesKeys: Int
    /// The route-instances with a series in any stripe: the bound counts distinct pairs.
    private let admitted = Mutex<Set<Key>>([])
    /// The clock, in seconds since 1970 (tests move it).
    let now: @Sendable () -> Double

    public init(
        traceCapacity: Int = 1000, maxSeriesKeys: Int = 200,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) {
        self.stripes = (0..<Self.stripeCount).map { _ in Stripe() }
        self.traces = Mutex(RingBuffer(capacity: traceCapacity))
        self.traceCapacity = max(0, traceCapacity)
        self.keepsTraces = traceCapacity > 0
        self.maxSeriesKeys = max(1, maxSeriesKeys)
        self.now = now
    }

    /// Records one finished request.
    func record(_ x: Exchange) {
        let time = now()
        let instance = x.logValues["picked_instance"] ?? x.upstreamAddr ?? ""
        // A stream that broke after content was relayed answered 200 but failed.
        let broken = x.logValues["llm_error_class"] == ErrorClass.streamBroken.rawValue
        let failed = x.status >= 400 || broken
        let errorClass = failed ? x.logValues["llm_error_class"] : nil
        let prompt = x.logValues["llm_prompt_tokens"].flatMap { Int($0) }
        let completion = x.logValues["llm_completion_tokens"].flatMap { Int($0) }
        let ttft = x.logValues["llm_time_to_first_token"].flatMap { Int($0) }
        let durationMs = AIProxyHandler.milliseconds(x.elapsed)
        let sample = SeriesSample(
            failed: failed, errorClass: failed ? (errorClass ?? "other") : nil, promptTokens: prompt ?? 0,
            completionTokens: completion ?? 0, ttftMs: ttft.map(Double.init), durationMs: Double(durationMs))
        let routeID = x.route?.id ?? ""
        let ai = x.ai
        var attempts = ai?.attemptTrace ?? []
        if broken, let last = attempts.indices.last, attempts[last].errorClass == nil {
            attempts[last].errorClass = ErrorClass.streamBroken.rawValue
        }
        let trace: RequestTrace? =
            keepsTraces
            ? RequestTrace(
                requestID: Self.bounded(x.requestID), time: time, method: x.method, path: Self.bounded(x.path),
                routeID: x.route?.id, consumer: x.consumer?.username, status: x.status,
                modelAsked: ai?.clientModel.map(Self.bounded), modelServed: x.logValues["llm_model"].map(Self.bounded),
                instance: instance.isEmpty ? nil : instance,
                promptTokens: prompt, completionTokens: completion, ttftMs: ttft, durationMs: durationMs,
                errorClass: errorClass, attempts: attempts) : nil
        let seconds = Int(time)
        stripe().series.withLock { series in
            // A new series counts against the bound of all stripes together (memory).
            func bounded(_ key: Key) -> Key {
                guard series[key] == nil else { return key }
                return admit(key) ? key : Key(route: "(other)", instance: "")
            }
            series[bounded(Key(route: routeID, instance: instance)), default: RequestSeries()].add(
                sample, at: seconds)
            for attempt in attempts {
                guard let failure = attempt.errorClass else { continue }
                series[bounded(Key(route: routeID, instance: attempt.instance)), default: RequestSeries()]
                    .addAttemptFailure(failure, at: seconds)
            }
        }
        if let trace {
            let evicted = traces.withLock { $0.append(trace) }
            _ = evicted  // released here, outside the lock
        }
    }

    /// Whether `key` may have a series (taken only the first time a stripe sees the key).
    private func admit(_ key: Key) -> Bool {
        admitted.withLock { admitted in
            if admitted.contains(key) { return true }
            guard admitted.count < maxSeriesKeys else { return false }
            admitted.insert(key)
            return true
        }
    }

    /// Text from a request, cut to 256 bytes: the trace's memory does not depend on clients.
    static func bounded(_ text: String) -> String {
        text.utf8.count <= 256 ? text : String(decoding: text.utf8.prefix(256), as: UTF8.self) + "…"
    }

    /// This thread's stripe.
    private func stripe() -> Stripe {
        let thread = UInt(pthread_self())
        return stripes[Int((thread >> 12) % UInt(stripes.count))]
    }

    /// The series of every stripe whose key `select` keeps.
    private func series(_ select: (Key) -> Bool) -> [RequestSeries] {
        stripes.flatMap { stripe in
            stripe.series.withLock { series in series.filter { select($0.key) }.map(\.value) }
        }
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
        let selected = series { (route == nil || $0.route == route) && (instance == nil || $0.instance == instance) }
        let span = window == .lastQuarterHour ? 60 : 900
        let from = window == .lastQuarterHour ? end - 14 * 60 : end - 86400
        let empty =
            window == .lastQuarterHour ? BucketRing(span: 60, capacity: 60) : BucketRing(span: 900, capacity: 97)
        var points = empty.buckets(from: from, to: end)
        for one in selected {
            let buckets = (window == .lastQuarterHour ? one.minutes : one.quarters).buckets(from: from, to: end)
            for i in points.indices where i < buckets.count { points[i].bucket.add(buckets[i].bucket) }
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
        let key = Key(route: route, instance: instance)
        var total = SeriesBucket()
        for one in series({ $0 == key }) {
            for point in one.minutes.buckets(from: end - 14 * 60, to: end) { total.add(point.bucket) }
        }
        var errors = JSONObject()
        for (i, name) in SeriesBucket.errorClasses.enumerated() where total.attemptFailuresByClass[i] > 0 {
            errors[name] = .int(Int(total.attemptFailuresByClass[i]))
        }
        return errors
    }

    /// The newest traces (at most `limit`), or the one with `requestID`.
    func traces(limit: Int, requestID: String? = nil) -> [RequestTrace] {
        // Only what is answered is copied under the lock every request's log phase takes.
        traces.withLock { ring in
            if let requestID { return ring.newest(limit: 10) { $0.requestID == requestID } }
            return ring.newest(limit: max(0, limit)) { _ in true }
        }
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

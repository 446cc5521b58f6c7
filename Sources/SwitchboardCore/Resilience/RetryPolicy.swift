/// `retry` of `ai-proxy-multi`: how often and how patiently one instance is retried before the
/// fallback rules move on. Absent, `per_instance` is 0 and nothing is retried in place.
public struct RetryPolicy: Sendable, Equatable {
    public var perInstance = 0
    public var backoffMs = 500
    public var maxBackoffMs = 5000
    public var jitter = true
    public var honorRetryAfter = true
    public var maxRetryAfterMs = 30000

    /// At most this many attempts to one instance within ``windowMs``, whatever the settings.
    public static let windowAttempts = 4
    public static let windowMs = 3000

    public init() {}

    public init(_ json: JSONValue?) {
        guard let json else { return }
        perInstance = json["per_instance"]?.intValue ?? perInstance
        backoffMs = json["backoff_ms"]?.intValue ?? backoffMs
        maxBackoffMs = json["max_backoff_ms"]?.intValue ?? maxBackoffMs
        jitter = json["jitter"]?.boolValue ?? jitter
        honorRetryAfter = json["honor_retry_after"]?.boolValue ?? honorRetryAfter
        maxRetryAfterMs = json["max_retry_after_ms"]?.intValue ?? maxRetryAfterMs
    }

    /// The exponential backoff before retry number `retry` (1-based): `backoff_ms × 2^(retry-1)`
    /// capped at `max_backoff_ms`; with jitter, uniformly in [half, all] of it, so clients
    /// that failed together do not come back together. `unit` is a random number in [0, 1).
    public func backoff(retry: Int, unit: Double) -> Int {
        let exponent = min(max(retry - 1, 0), 20)
        let full = min(backoffMs * (1 << exponent), maxBackoffMs)
        guard jitter else { return full }
        return full / 2 + Int(Double(full - full / 2) * unit)
    }
}

/// One request's retries of one instance: a small value-type state machine that decides, after
/// each retryable failure, whether to wait and send again or to move on.
public struct RetryBudget: Sendable {
    public enum Decision: Sendable, Equatable {
        /// Send to the same instance again after this many milliseconds.
        case retry(afterMs: Int)
        /// Leave this instance to the fallback rules; `reason` says why (for the log).
        case moveOn(reason: String)
    }

    public let policy: RetryPolicy
    /// Millisecond timestamps of this request's attempts per instance.
    public private(set) var attempts: [Int: [Int]] = [:]

    public init(policy: RetryPolicy) {
        self.policy = policy
    }

    public mutating func recordAttempt(instance: Int, atMs now: Int) {
        attempts[instance, default: []].append(now)
    }

    /// After a failed attempt of class `errorClass` on `instance` at `now` (ms): retry or move on.
    /// `retryAfterMs` is the provider's hint; `remainingMs` the request's time budget left.
    public func decide(
        instance: Int, errorClass: ErrorClass, retryAfterMs: Int?, nowMs now: Int, remainingMs: Int, unit: Double
    ) -> Decision {
        guard errorClass.isRetryable else { return .moveOn(reason: "\(errorClass.rawValue) is not retried") }
        let sent = attempts[instance] ?? []
        guard sent.count <= policy.perInstance else {
            return .moveOn(reason: "retry.per_instance \(policy.perInstance) used")
        }
        var wait = policy.backoff(retry: sent.count, unit: unit)
        if let retryAfterMs, policy.honorRetryAfter {
            if retryAfterMs > policy.maxRetryAfterMs {
                return .moveOn(reason: "Retry-After \(retryAfterMs)ms exceeds max_retry_after_ms")
            }
            wait = max(wait, retryAfterMs)
        }
        // Never more than `windowAttempts` attempts within any `windowMs`.
        if sent.count >= RetryPolicy.windowAttempts {
            let oldest = sent[sent.count - RetryPolicy.windowAttempts]
            wait = max(wait, oldest + RetryPolicy.windowMs - now)
        }
        if wait >= remainingMs { return .moveOn(reason: "a retry in \(wait)ms would exceed request_timeout_ms") }
        return .retry(afterMs: max(wait, 0))
    }
}

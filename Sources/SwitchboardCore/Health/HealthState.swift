/// The health of one instance (node): counters of consecutive results, healthy or not, an
/// optional cooldown (after a 429, or while ejected by passive checks) and the ejection view.
/// A value type whose transitions return what changed, so the owner logs each change once.
public struct HealthState: Sendable, Equatable {
    /// Passive ejection as the control API shows it (the circuit breaker is a separate state).
    public enum Passive: String, Sendable { case ok, ejected, halfOpen = "half_open" }
    public enum Failure: Sendable { case http, tcp, timeout }

    public private(set) var healthy = true
    public private(set) var successes = 0
    public private(set) var httpFailures = 0
    public private(set) var tcpFailures = 0
    public private(set) var timeoutFailures = 0
    /// Monotonic seconds until which the instance takes no traffic (429 / ejection).
    public private(set) var cooldownUntil: Double?
    /// Ejected by passive checks; comes back by an active probe or a half-open trial.
    public private(set) var ejected = false
    /// A half-open trial request is in flight.
    public private(set) var trialInFlight = false
    public var lastProbeAt: Double?
    public var lastProbeResult: String?

    public init() {}

    /// A transition worth one log line.
    public enum Change: Sendable, Equatable {
        case becameHealthy
        case becameUnhealthy(String)
    }

    public var passive: Passive {
        guard ejected else { return .ok }
        return trialInFlight || cooldownUntil == nil ? .halfOpen : .ejected
    }

    /// Whether a request may go to the instance now. A passively ejected instance whose
    /// cooldown ended admits exactly one trial request (half-open).
    public mutating func admit(now: Double, activeChecked: Bool) -> Bool {
        if let until = cooldownUntil {
            if now < until { return false }
            cooldownUntil = nil
        }
        if ejected {
            if activeChecked { return false }
            guard !trialInFlight else { return false }
            trialInFlight = true
            return true
        }
        return healthy
    }

    /// Available without claiming a trial (for listings and "is anything left" checks).
    public func isAvailable(now: Double, activeChecked: Bool) -> Bool {
        if let until = cooldownUntil, now < until { return false }
        if ejected { return !activeChecked && !trialInFlight }
        return healthy
    }

    public mutating func coolDown(until: Double) {
        cooldownUntil = max(cooldownUntil ?? 0, until)
    }

    // MARK: Active probes

    public mutating func probeSucceeded(threshold: Int) -> Change? {
        successes += 1
        httpFailures = 0
        tcpFailures = 0
        timeoutFailures = 0
        // Passively ejected but actively healthy: one good probe brings it back.
        if healthy && ejected {
            ejected = false
            trialInFlight = false
            cooldownUntil = nil
            return .becameHealthy
        }
        guard !healthy, successes >= threshold else { return nil }
        healthy = true
        ejected = false
        trialInFlight = false
        cooldownUntil = nil
        return .becameHealthy
    }

    public mutating func probeFailed(_ failure: Failure, threshold: Int) -> Change? {
        successes = 0
        let count: Int
        switch failure {
        case .http:
            httpFailures += 1
            count = httpFailures
        case .tcp:
            tcpFailures += 1
            count = tcpFailures
        case .timeout:
            timeoutFailures += 1
            count = timeoutFailures
        }
        guard healthy, count >= threshold else { return nil }
        healthy = false
        return .becameUnhealthy("\(count) \(Self.name(failure)) in a row")
    }

    static func name(_ failure: Failure) -> String {
        switch failure {
        case .http: return "http failures"
        case .tcp: return "tcp failures"
        case .timeout: return "timeouts"
        }
    }

    // MARK: Passive (live traffic)

    public mutating func liveSucceeded(config: HealthCheckConfig.Passive) -> Change? {
        httpFailures = 0
        tcpFailures = 0
        timeoutFailures = 0
        if ejected && trialInFlight {
            ejected = false
            trialInFlight = false
            successes = 0
            return .becameHealthy
        }
        successes += 1
        return nil
    }

    public mutating func liveFailed(_ failure: Failure, config: HealthCheckConfig.Passive, now: Double) -> Change? {
        successes = 0
        if ejected && trialInFlight {
            trialInFlight = false
            cooldownUntil = now + config.cooldown
            return nil
        }
        let threshold: Int
        let count: Int
        switch failure {
        case .http:
            httpFailures += 1
            (count, threshold) = (httpFailures, config.httpFailures)
        case .tcp:
            tcpFailures += 1
            (count, threshold) = (tcpFailures, config.tcpFailures)
        case .timeout:
            timeoutFailures += 1
            (count, threshold) = (timeoutFailures, config.timeouts)
        }
        guard !ejected, count >= threshold else { return nil }
        ejected = true
        cooldownUntil = now + config.cooldown
        return .becameUnhealthy("\(count) live \(Self.name(failure)) in a row")
    }

    /// The trial request ended without a verdict (e.g. the client went away).
    public mutating func trialAbandoned() {
        trialInFlight = false
    }
}

import Foundation
import Logging
import SwitchboardCore
import SwitchboardStore
import Synchronization

/// The shared health of one AI instance: what the picker asks, what live traffic and probes
/// report, and what the control API shows. Lives in the ``HealthRegistry`` by identity, so it
/// survives configuration changes that leave the instance as it was.
public final class InstanceHealth: Sendable {
    /// Attempts on this instance now (streams until their relay ends), for the dashboard.
    let inFlight = Atomic(0)
    public let key: String
    public let routeID: String?
    public let instance: String
    public let host: String
    public let port: Int
    public let scheme: String
    public let config: HealthCheckConfig?
    let state = Mutex(HealthState())
    /// `breaker` of the plugin: `nil` when not configured (APISIX behaviour).
    public let breakerPolicy: BreakerPolicy?
    let breaker: Mutex<CircuitBreaker?>
    let logger: Logger
    /// Where cooldowns and breaker openings go for the other nodes of a cluster.
    let broadcast: FailureBroadcast?

    init(
        key: String, routeID: String?, instance: String, host: String, port: Int, scheme: String,
        config: HealthCheckConfig?, breaker: BreakerPolicy? = nil, logger: Logger, broadcast: FailureBroadcast? = nil
    ) {
        self.broadcast = broadcast
        self.breakerPolicy = breaker
        self.breaker = Mutex(breaker.map(CircuitBreaker.init))
        self.key = key
        self.routeID = routeID
        self.instance = instance
        self.host = host
        self.port = port
        self.scheme = scheme
        self.config = config
        self.logger = logger
    }

    var activeChecked: Bool { config?.active != nil }
    /// Listed by the control API: instances with `checks` or a breaker.
    public var isChecked: Bool { config != nil || breakerPolicy != nil }

    static func now() -> Double { MonotonicClock.seconds() }

    /// Claims the right to send a request now (a half-open trial of the passive checks or of
    /// the breaker counts).
    public func admit() -> Bool {
        let now = Self.now()
        let nowMs = Int(now * 1000)
        guard breaker.withLock({ $0?.isAvailable(nowMs: nowMs) ?? true }) else { return false }
        guard state.withLock({ $0.admit(now: now, activeChecked: activeChecked) }) else { return false }
        let admitted = breaker.withLock { $0 == nil ? true : $0!.admit(nowMs: nowMs) }
        if !admitted { state.withLock { $0.trialAbandoned() } }
        return admitted
    }

    public func isAvailable() -> Bool {
        let now = Self.now()
        guard breaker.withLock({ $0?.isAvailable(nowMs: Int(now * 1000)) ?? true }) else { return false }
        return state.withLock { $0.isAvailable(now: now, activeChecked: activeChecked) }
    }

    /// The breaker's state name (`closed`, `open`, `half_open`), `nil` without a breaker.
    public var breakerState: String? { breaker.withLock { $0?.name } }

    /// Feeds an attempt's outcome to the breaker: `nil` is a success (the instance answered,
    /// even with a client error); an instance failure counts towards opening it.
    public func reportToBreaker(_ errorClass: ErrorClass?) {
        guard breakerPolicy != nil else { return }
        // The request's own budget ran out: no verdict on the instance.
        if errorClass == .requestTimeout { return breakerTrialAbandoned() }
        let nowMs = Int(Self.now() * 1000)
        let (opened, closed): (Bool, Bool) = breaker.withLock { breaker in
            guard breaker != nil else { return (false, false) }
            if let errorClass, errorClass.isInstanceFailure { return (breaker!.failed(nowMs: nowMs), false) }
            return (false, breaker!.succeeded())
        }
        if opened, let policy = breakerPolicy {
            logger.warning(
                "breaker of instance \(instance) (\(key)) opened after \(errorClass?.rawValue ?? "failure") for \(policy.openMs)ms"
            )
            broadcast?.send(SharedFailure(key: key, kind: .breakerOpen, seconds: Double(policy.openMs) / 1000))
        } else if closed {
            logger.notice("breaker of instance \(instance) (\(key)) closed")
        }
    }

    /// Whether the breaker lets traffic through now (closed, or open long enough for a trial).
    var breakerAllows: Bool {
        let nowMs = Int(Self.now() * 1000)
        return breaker.withLock { $0?.isAvailable(nowMs: nowMs) ?? true }
    }

    /// A request admitted here ended without reaching a verdict (the client left, a quota
    /// refused it): release the half-open trial of the breaker and of passive checks.
    func abandon() {
        breakerTrialAbandoned()
        state.withLock { $0.trialAbandoned() }
    }

    /// A breaker trial that ended without a verdict.
    func breakerTrialAbandoned() {
        let nowMs = Int(Self.now() * 1000)
        breaker.withLock { $0?.trialAbandoned(nowMs: nowMs) }
    }

    func log(_ change: HealthState.Change?) {
        switch change {
        case .becameHealthy?:
            logger.notice("instance \(instance) (\(key)) is healthy again")
        case .becameUnhealthy(let reason)?:
            logger.warning("instance \(instance) (\(key)) is unhealthy: \(reason)")
        case nil:
            break
        }
    }

    /// No traffic until `seconds` from now (a 429's Retry-After).
    public func coolDown(seconds: Double) {
        let until = Self.now() + seconds
        state.withLock { $0.coolDown(until: until) }
        logger.info("instance \(instance) (\(key)) cools down for \(seconds)s after a 429")
        broadcast?.send(SharedFailure(key: key, kind: .cooldown, seconds: seconds))
    }

    /// What another node of the cluster learned: cool down, or keep the breaker open, as if it
    /// had happened here (not shared again).
    func applyShared(_ failure: SharedFailure) {
        let now = Self.now()
        switch failure.kind {
        case .cooldown:
            state.withLock { $0.coolDown(until: now + failure.seconds) }
            logger.info("instance \(instance) (\(key)) cools down for \(failure.seconds)s: a 429 seen by another node")
        case .breakerOpen:
            let untilMs = Int((now + failure.seconds) * 1000)
            let changed: Bool = breaker.withLock { breaker in
                guard breaker != nil else { return false }
                breaker?.openedElsewhere(untilMs: untilMs)
                return true
            }
            if changed {
                logger.warning(
                    "breaker of instance \(instance) (\(key)) open for \(failure.seconds)s: opened by another node")
            }
        }
    }

    /// The outcome of a live request (passive checks).
    public func reportLive(status: Int?, failure: HealthState.Failure?) {
        guard let passive = config?.passive else {
            if failure == nil { state.withLock { $0.trialAbandoned() } }
            return
        }
        let now = Self.now()
        let change: HealthState.Change? = state.withLock { state in
            if let failure { return state.liveFailed(failure, config: passive, now: now) }
            if let status, passive.unhealthyStatuses.contains(status) {
                return state.liveFailed(.http, config: passive, now: now)
            }
            return state.liveSucceeded(config: passive)
        }
        log(change)
    }

    func reportProbe(success: Bool, failure: HealthState.Failure, result: String) {
        guard let active = config?.active else { return }
        let change: HealthState.Change? = state.withLock { state in
            state.lastProbeAt = Date().timeIntervalSince1970
            state.lastProbeResult = result
            if success { return state.probeSucceeded(threshold: active.successes) }
            let threshold: Int
            switch failure {
            case .http: threshold = active.httpFailures
            case .tcp: threshold = active.tcpFailures
            case .timeout: threshold = active.timeouts
            }
            return state.probeFailed(failure, threshold: threshold)
        }
        log(change)
    }

    /// Seconds until the next probe: the healthy or unhealthy interval.
    func probeInterval() -> Double {
        guard let active = config?.active else { return 3600 }
        let healthy = state.withLock { $0.healthy }
        return Double(healthy ? active.healthyInterval : active.unhealthyInterval)
    }

    /// The control API's view (APISIX's `/v1/healthcheck` shape, with Switchboard's fields).
    public func describe() -> JSONValue {
        let now = Self.now()
        let unixNow = Date().timeIntervalSince1970
        let s = state.withLock { $0 }
        let breakerOpen = !breaker.withLock { $0?.isAvailable(nowMs: Int(now * 1000)) ?? true }
        let available = s.isAvailable(now: now, activeChecked: activeChecked) && !breakerOpen
        var node: JSONObject = [
            "host": .string(host), "port": .int(port),
            "status": .string(s.healthy && !s.ejected ? "healthy" : "unhealthy"),
            "counter": [
                "success": .int(s.successes), "http_failure": .int(s.httpFailures), "tcp_failure": .int(s.tcpFailures),
                "timeout_failure": .int(s.timeoutFailures),
            ],
            "cooldown_until": s.cooldownUntil.map { .double(unixNow + ($0 - now)) } ?? .null,
            // Each state under its own name: the circuit breaker (`null` when none is
            // configured) and passive ejection; a 429's cooldown is `cooldown_until`.
            "breaker": breakerState.map { .string($0) } ?? .null,
            "passive": .string(s.passive.rawValue),
            "available": .bool(available),
        ]
        if let at = s.lastProbeAt {
            node["last_probe"] = ["at": .double(at), "result": .string(s.lastProbeResult ?? "")]
        } else {
            node["last_probe"] = .null
        }
        let type = config?.active?.kind.rawValue ?? "http"
        return [
            "name": .string(key), "route_id": routeID.map { .string($0) } ?? .null, "instance": .string(instance),
            "type": .string(type), "nodes": [.object(node)],
        ]
    }
}

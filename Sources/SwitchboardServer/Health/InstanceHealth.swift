import Foundation
import Logging
import SwitchboardCore
import Synchronization

/// The shared health of one AI instance: what the picker asks, what live traffic and probes
/// report, and what the control API shows. Lives in the ``HealthRegistry`` by identity, so it
/// survives configuration changes that leave the instance as it was.
public final class InstanceHealth: Sendable {
    public let key: String
    public let routeID: String?
    public let instance: String
    public let host: String
    public let port: Int
    public let scheme: String
    public let config: HealthCheckConfig?
    let state = Mutex(HealthState())
    let logger: Logger

    init(
        key: String, routeID: String?, instance: String, host: String, port: Int, scheme: String,
        config: HealthCheckConfig?, logger: Logger
    ) {
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
    /// Listed by the control API: instances with `checks`.
    public var isChecked: Bool { config != nil }

    static func now() -> Double { MonotonicClock.seconds() }

    /// Claims the right to send a request now (a half-open trial counts).
    public func admit() -> Bool {
        let now = Self.now()
        return state.withLock { $0.admit(now: now, activeChecked: activeChecked) }
    }

    public func isAvailable() -> Bool {
        let now = Self.now()
        return state.withLock { $0.isAvailable(now: now, activeChecked: activeChecked) }
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
        let available = s.isAvailable(now: now, activeChecked: activeChecked)
        var node: JSONObject = [
            "host": .string(host), "port": .int(port),
            "status": .string(s.healthy && !s.ejected ? "healthy" : "unhealthy"),
            "counter": [
                "success": .int(s.successes), "http_failure": .int(s.httpFailures), "tcp_failure": .int(s.tcpFailures),
                "timeout_failure": .int(s.timeoutFailures),
            ],
            "cooldown_until": s.cooldownUntil.map { .double(unixNow + ($0 - now)) } ?? .null,
            "breaker": .string(s.breaker.rawValue),
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

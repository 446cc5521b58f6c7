import Foundation
import HTTPTypes
import Hummingbird
import Logging
import SwitchboardCore
import Synchronization

/// What `ai-proxy-multi` asks `ai-rate-limiting` while choosing instances (fallback strategy
/// `rate_limiting` / `instance_health_and_rate_limiting`).
protocol InstanceQuotaGate: Sendable {
    /// Brings what ``admits(instance:exchange:)`` knows about `instances` up to date (shared
    /// counters: one round trip for all of them, before picking).
    func prepare(instances: [String], exchange: Exchange) async
    /// Whether `instance` has quota left (sets that instance's quota headers, as APISIX does).
    func admits(instance: String, exchange: Exchange) -> Bool
    /// Moves this request's reservation to `instance` after a fallback. With `enforce`, `false`
    /// when that instance has no quota left; without, the request goes on and its usage is
    /// charged there anyway (APISIX charges the last instance after the fact).
    func moveReservation(to instance: String, exchange: Exchange, enforce: Bool) async -> Bool
}

/// Reservations this request holds, released or settled in the log phase.
final class RateLimitState: @unchecked Sendable {
    var reservations: [String: QuotaReservation] = [:]
    var rejected = false
}

struct AIRateLimitingHandler: PluginHandler, InstanceQuotaGate {
    struct Rule: Sendable {
        var count: QuotaAmount
        var window: QuotaAmount
        var key: RuleKey
        var headerName: String
    }

    var name: String { AIRateLimitingPlugin.name }
    var priority: Int { AIRateLimitingPlugin.priority }

    let strategy: String
    let costExpression: CostExpression?
    let limit: QuotaAmount?
    let window: QuotaAmount?
    let instances: [String: (limit: QuotaAmount, window: QuotaAmount)]
    let rules: [Rule]
    let showHeaders: Bool
    let rejectedCode: Int
    let rejectedMessage: String?
    let allowDegradation: Bool
    /// `<parent key>:<hash of this config>`: counters are per route or consumer, and a changed
    /// config starts new counters (APISIX's behaviour).
    let counterPrefix: String
    /// The route, consumer or consumer group this configuration belongs to.
    let owner: String
    let board: QuotaBoard
    let quotas: any QuotaCounterStore
    /// The cluster's counters with `policy: cluster` (`nil`: this node's `quotas`).
    let cluster: ClusterQuotas?
    /// `sync_interval` in seconds: admit locally between syncs with the cluster.
    let syncInterval: Double?
    let metrics: GatewayMetrics
    let logger: Logger
    /// Set once an unresolvable amount has been logged for this configuration.
    let invalidLogged = OnceFlag()

    init(config: JSONValue, context: PluginContext) {
        strategy = config["limit_strategy"]?.stringValue ?? "total_tokens"
        costExpression = config["cost_expr"]?.stringValue.flatMap { try? CostExpression($0) }
        limit = QuotaAmount.configured(config["limit"])
        window = QuotaAmount.configured(config["time_window"])
        var instances: [String: (QuotaAmount, QuotaAmount)] = [:]
        for item in config["instances"]?.arrayValue ?? [] {
            guard let name = item["name"]?.stringValue else { continue }
            instances[name] = (
                QuotaAmount.configured(item["limit"]) ?? .fixed(0),
                QuotaAmount.configured(item["time_window"]) ?? .fixed(0)
            )
        }
        self.instances = instances
        rules = (config["rules"]?.arrayValue ?? []).enumerated().map { i, rule in
            let prefix = rule["header_prefix"]?.stringValue ?? String(i + 1)
            return Rule(
                count: QuotaAmount.configured(rule["count"]) ?? .fixed(0),
                window: QuotaAmount.configured(rule["time_window"]) ?? .fixed(0),
                key: RuleKey(rule["key"]?.stringValue ?? ""), headerName: prefix)
        }
        showHeaders = config["show_limit_quota_header"]?.boolValue ?? true
        rejectedCode = config["rejected_code"]?.intValue ?? 503
        rejectedMessage = config["rejected_msg"]?.stringValue
        allowDegradation = config["allow_degradation"]?.boolValue ?? false
        counterPrefix = "\(context.parentKey):\(CRC32.checksum(config.serializedBytes()))"
        owner = context.parentKey
        board = context.services.quotaBoard
        quotas = context.quotas
        cluster = config["policy"]?.stringValue == "cluster" ? context.clusterQuotas : nil
        syncInterval = config["sync_interval"]?.intValue.map { Double($0) / 1000 }
        metrics = context.metrics
        logger = context.logger
    }

    private func state(_ exchange: Exchange) -> RateLimitState {
        if let existing = exchange.extensions[name] as? RateLimitState { return existing }
        let fresh = RateLimitState()
        exchange.extensions[name] = fresh
        return fresh
    }

    /// What applies to one counter for this request.
    enum Applied {
        /// No quota for this instance.
        case unlimited
        case window(QuotaWindow)
        /// An amount that does not resolve to a positive integer: the request fails closed.
        case invalid(String)
    }

    /// Resolves a limit and a window for this request.
    private func applied(_ limit: QuotaAmount, _ window: QuotaAmount, _ exchange: Exchange, field: String) -> Applied {
        guard let limitValue = limit.resolve(exchange) else { return .invalid(limit.failure(exchange, field: field)) }
        guard let seconds = window.resolve(exchange) else {
            return .invalid(window.failure(exchange, field: "time_window"))
        }
        return .window(QuotaWindow(limit: limitValue, seconds: seconds))
    }

    /// The quota that applies to `instance`: its own entry, else the top-level limit (each
    /// instance with its own counter), else none.
    private func quotaWindow(for instance: String, _ exchange: Exchange) -> Applied {
        if let (l, w) = instances[instance] { return applied(l, w, exchange, field: "limit") }
        guard let limit, let window else { return .unlimited }
        return applied(limit, window, exchange, field: "limit")
    }

    // MARK: - Gate for ai-proxy-multi

    func prepare(instances: [String], exchange: Exchange) async {
        guard let cluster, rules.isEmpty else { return }
        var counters: [(key: String, window: QuotaWindow)] = []
        for instance in instances {
            if case .window(let window) = quotaWindow(for: instance, exchange) {
                counters.append(("\(counterPrefix):\(instance)", window))
            }
        }
        await cluster.prepare(counters)
    }

    func admits(instance: String, exchange: Exchange) -> Bool {
        guard rules.isEmpty, case .window(let window) = quotaWindow(for: instance, exchange) else { return true }
        let key = "\(counterPrefix):\(instance)"
        let current = cluster?.known(key, window: window) ?? quotas.peek(key, window: window)
        setHeaders(exchange, suffix: instance, current, remaining: current.admits ? current.remaining : 0)
        return current.admits
    }

    func moveReservation(to instance: String, exchange: Exchange, enforce: Bool) async -> Bool {
        guard rules.isEmpty else { return true }
        let state = state(exchange)
        for (_, reservation) in state.reservations { finish(reservation, actual: nil) }
        state.reservations = [:]
        if await reserve(instance: instance, exchange) == nil { return true }
        if enforce { return false }
        // Charge the usage to this instance without a reservation (locally its window is not
        // matched; the shared counters need the window the refusal came from).
        let key = "\(counterPrefix):\(instance)"
        let start = cluster?.lastWindowStart(key).map(Double.init) ?? -1
        state.reservations[instance] = QuotaReservation(key: key, amount: 0, windowStart: start)
        return true
    }

    // MARK: - Phases

    func access(_ exchange: Exchange) async throws -> Response? {
        guard let ai = exchange.ai, ai.picked != nil, let instance = exchange.logValues["picked_instance"] else {
            return nil  // Without an AI proxy on the route there is nothing to limit (as in APISIX).
        }
        if !rules.isEmpty { return await applyRules(exchange) }
        return await reserve(instance: instance, exchange)
    }

    /// A reservation on the counters of this configuration's policy.
    private func reserve(_ key: String, window: QuotaWindow, _ exchange: Exchange) async -> ClusterQuotas.Outcome {
        let estimate = estimate(exchange, key: key)
        let outcome: ClusterQuotas.Outcome
        if let cluster {
            outcome = await cluster.reserve(
                key, window: window, estimate: estimate, syncInterval: syncInterval, allowDegradation: allowDegradation)
        } else {
            outcome = .decided(quotas.reserve(key, window: window, estimate: estimate))
        }
        var rejected = false
        if case .decided(.rejected) = outcome { rejected = true }
        board.observe(
            key: key, owner: owner, subject: String(key.dropFirst(counterPrefix.count + 1)), window: window,
            shared: cluster != nil, rejected: rejected, now: exchange.startDate.timeIntervalSince1970)
        return outcome
    }

    /// Settles (`actual`) or releases a reservation where it was made.
    private func finish(_ reservation: QuotaReservation, actual: Int?) {
        if let cluster {
            cluster.finish(reservation, actual: actual)
        } else if let actual {
            quotas.settle(reservation, actual: actual)
        } else {
            quotas.release(reservation)
        }
    }

    /// Reserves this request's estimate on `instance`; a response when it is refused.
    private func reserve(instance: String, _ exchange: Exchange) async -> Response? {
        let window: QuotaWindow
        switch quotaWindow(for: instance, exchange) {
        case .unlimited: return nil
        case .invalid(let reason): return failure(exchange, reason)
        case .window(let resolved): window = resolved
        }
        switch await reserve("\(counterPrefix):\(instance)", window: window, exchange) {
        case .decided(.admitted(let reservation, let before)):
            state(exchange).reservations[instance] = reservation
            setHeaders(exchange, suffix: instance, before, remaining: before.remaining)
            return nil
        case .decided(.rejected(let current)):
            setHeaders(exchange, suffix: instance, current, remaining: 0)
            return reject(exchange, current)
        case .unavailable(let reason):
            return unavailable(exchange, reason)
        }
    }

    private func applyRules(_ exchange: Exchange) async -> Response? {
        var applied = false
        let state = state(exchange)
        for rule in rules {
            guard let key = rule.key.resolve(exchange) else { continue }
            let window: QuotaWindow
            switch self.applied(rule.count, rule.window, exchange, field: "count") {
            case .unlimited: continue
            case .invalid(let reason):
                for (_, reservation) in state.reservations { finish(reservation, actual: nil) }
                state.reservations = [:]
                return failure(exchange, reason)
            case .window(let resolved): window = resolved
            }
            applied = true
            switch await reserve("\(counterPrefix):rule:\(key)", window: window, exchange) {
            case .decided(.admitted(let reservation, let before)):
                state.reservations["rule:\(rule.headerName):\(key)"] = reservation
                setRuleHeaders(exchange, rule, before, remaining: before.remaining)
            case .decided(.rejected(let current)):
                setRuleHeaders(exchange, rule, current, remaining: 0)
                for (_, reservation) in state.reservations { finish(reservation, actual: nil) }
                state.reservations = [:]
                return reject(exchange, current)
            case .unavailable(let reason):
                for (_, reservation) in state.reservations { finish(reservation, actual: nil) }
                state.reservations = [:]
                return unavailable(exchange, reason)
            }
        }
        if !applied && !allowDegradation {
            exchange.logValues["rate_limiting_error"] = "failed to get rate limit rules"
            return GatewayResponse.json(.internalServerError, ["error_msg": "failed to get rate limit rules"])
        }
        return nil
    }

    /// A quota amount that did not resolve: 500 (fail closed), logged once per route and
    /// configuration; with `allow_degradation` the request goes on unlimited, as in APISIX.
    private func failure(_ exchange: Exchange, _ reason: String) -> Response? {
        let message = "invalid rate limit: \(reason)"
        exchange.logValues["rate_limiting_error"] = message
        if invalidLogged.set() {
            logger.error("\(AIRateLimitingPlugin.name) of \(counterPrefix): \(message)")
        }
        if allowDegradation { return nil }
        return GatewayResponse.json(.internalServerError, ["error_msg": .string(message)])
    }

    func log(_ exchange: Exchange) {
        guard let state = exchange.extensions[name] as? RateLimitState else { return }
        let usage = exchange.ai?.usage
        for (_, reservation) in state.reservations {
            if let usage, !usage.isEmpty {
                finish(reservation, actual: cost(usage))
                if let cluster {
                    cluster.recordCompletion(reservation.key, completion: usage.completion)
                } else {
                    quotas.recordCompletion(reservation.key, completion: usage.completion)
                }
            } else {
                finish(reservation, actual: nil)
            }
        }
        state.reservations = [:]
    }

    // MARK: - Costs

    /// What the strategy charges for a usage.
    func cost(_ usage: TokenUsage) -> Int {
        switch strategy {
        case "prompt_tokens": return usage.prompt
        case "completion_tokens": return usage.completion
        case "expression": return costExpression?.cost(usage.raw) ?? usage.total
        default: return usage.total
        }
    }

    /// The reservation for a request not yet answered: its prompt size (bytes/4 of the message
    /// text) plus its `max_tokens` when given, else the running average completion on the counter.
    func estimate(_ exchange: Exchange, key: String) -> Int {
        guard let body = exchange.ai?.body else { return 0 }
        var textBytes = 0
        func add(_ content: JSONValue?) {
            switch content {
            case .string(let s)?: textBytes += s.utf8.count
            case .array(let parts)?: for part in parts { add(part["text"] ?? part) }
            default: break
            }
        }
        for message in body["messages"]?.arrayValue ?? [] { add(message["content"]) }
        add(body["input"])
        add(body["system"])
        let prompt = (textBytes + 3) / 4
        // Clamped: a client's `max_tokens` of 2^63-1 must not overflow the sums below.
        let maxTokens =
            Saturating.count(body["max_tokens"]) ?? Saturating.count(body["max_completion_tokens"])
            ?? Saturating.count(body["max_output_tokens"])
        let completion = maxTokens ?? cluster?.averageCompletion(key) ?? quotas.averageCompletion(key)
        var usage = TokenUsage(prompt: prompt, completion: completion)
        usage.raw = [
            "prompt_tokens": .int(prompt), "completion_tokens": .int(completion),
            "total_tokens": .int(prompt + completion),
            "input_tokens": .int(prompt), "output_tokens": .int(completion),
        ]
        return cost(usage)
    }

    // MARK: - Answers and headers

    /// The cluster's counters did not answer and `allow_degradation` is off: fail closed.
    private func unavailable(_ exchange: Exchange, _ reason: String) -> Response {
        let message = "quota store unavailable: \(reason)"
        exchange.logValues["rate_limiting_error"] = message
        return GatewayResponse.json(.serviceUnavailable, ["error_msg": .string(message)])
    }

    private func reject(_ exchange: Exchange, _ state: QuotaState) -> Response {
        self.state(exchange).rejected = true
        exchange.logValues["llm_error_class"] = "rate_limited"
        metrics.rateLimitRejection(
            routeID: exchange.route?.id ?? "", consumer: exchange.consumer?.username ?? "",
            instance: exchange.logValues["picked_instance"] ?? "")
        var headers = HTTPFields()
        headers[.retryAfter] = String(max(1, Int(state.resetIn.rounded(.up))))
        let body: JSONValue
        if let rejectedMessage {
            body = ["error_msg": .string(rejectedMessage)]
        } else {
            body = [
                "error": [
                    "message": "token quota exceeded", "type": "rate_limit_error", "code": "quota_exceeded",
                ]
            ]
        }
        return GatewayResponse.json(HTTPResponse.Status(code: rejectedCode), body, headers: headers)
    }

    static func format(_ seconds: Double, window: Int) -> String {
        if seconds >= Double(window) { return String(window) }
        let floored = (max(seconds, 0) * 100).rounded(.down) / 100
        return floored == floored.rounded() ? String(Int(floored)) : String(floored)
    }

    private func setHeaders(_ exchange: Exchange, suffix: String, _ state: QuotaState, remaining: Int) {
        exchange.logValues["rate_limiting_info"] =
            ([
                "rate_limiting_key": .string(suffix), "rate_limiting_limit": .int(state.limit),
                "rate_limiting_remaining": .int(remaining), "rate_limiting_reset": .double(state.resetIn),
            ] as JSONValue)
            .serialized()
        guard showHeaders else { return }
        let window = Int((state.resetIn).rounded(.up))
        exchange.setResponseHeader("X-AI-RateLimit-Limit-\(suffix)", String(state.limit))
        exchange.setResponseHeader("X-AI-RateLimit-Remaining-\(suffix)", String(remaining))
        exchange.setResponseHeader("X-AI-RateLimit-Reset-\(suffix)", Self.format(state.resetIn, window: window))
    }

    private func setRuleHeaders(_ exchange: Exchange, _ rule: Rule, _ state: QuotaState, remaining: Int) {
        guard showHeaders else { return }
        let window = Int((state.resetIn).rounded(.up))
        exchange.setResponseHeader("X-AI-\(rule.headerName)-RateLimit-Limit", String(state.limit))
        exchange.setResponseHeader("X-AI-\(rule.headerName)-RateLimit-Remaining", String(remaining))
        exchange.setResponseHeader(
            "X-AI-\(rule.headerName)-RateLimit-Reset", Self.format(state.resetIn, window: window))
    }
}

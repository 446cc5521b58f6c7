import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SwitchboardCore
import Synchronization

/// The runtime of `ai-proxy-multi` and `ai-proxy`. The access phase reads and checks the body,
/// detects the protocol and picks the first instance; the proxy phase makes the attempts and
/// falls back between instances as the configuration says (APISIX §2.5), with the
/// improvements of Switchboard: honest transport errors, streams that fail over until content
/// flows and never end silently, and usage always counted.
struct AIProxyHandler: PluginHandler {
    let name: String
    let priority: Int
    let settings: AIProxySettings
    let context: PluginContext
    let balancer: AIBalancer
    /// Health of each instance, shared with the registry (checkers, control API).
    let health: [InstanceHealth]
    let allUnhealthyLogged = OnceFlag()
    /// `GET …/models`: the models this route serves, built once.
    let modelList: ModelList
    /// The `semantic` balancer, when configured.
    let semantic: SemanticRouter?

    init(name: String, priority: Int, settings: AIProxySettings, context: PluginContext) {
        self.name = name
        self.priority = priority
        self.settings = settings
        self.context = context
        self.balancer = AIBalancer(settings: settings)
        self.modelList = ModelList(settings.instances)
        self.semantic = settings.semantic.map {
            SemanticRouter(
                options: $0, instances: settings.instances, cache: context.services.embeddings,
                clients: context.clients, logger: context.logger)
        }
        let routeID =
            context.parentKey.hasPrefix("/apisix/routes/")
            ? String(context.parentKey.dropFirst("/apisix/routes/".count)) : nil
        self.health = settings.instances.enumerated().map { i, instance in
            let endpoint =
                instance.resolvedEndpoint
                ?? AIEndpoint(
                    scheme: instance.provider.defaultScheme, host: "", port: instance.provider.defaultPort, path: nil)
            return context.health.declare(
                key: "\(context.parentKey)#instances[\(i)]", routeID: routeID, instance: instance.name,
                host: endpoint.host.isEmpty ? (instance.checks?.active?.host ?? "") : endpoint.host,
                port: endpoint.port, scheme: endpoint.scheme, config: instance.checks,
                breaker: settings.resilience.breaker)
        }
    }

    /// Whether failed attempts may move to another instance (never with a single instance, nor
    /// with the `semantic` balancer: the instance is chosen for what it is for, as in APISIX).
    var canFallBack: Bool { !settings.isSingle && settings.instances.count > 1 && semantic == nil }

    // MARK: - Access: intake and first pick

    func access(_ exchange: Exchange) async throws -> Response? {
        if exchange.method == "GET", let listing = modelList.answer(path: exchange.path) { return listing }
        let contentType = exchange.request.headers[.contentType] ?? "application/json"
        guard ASCII.hasPrefix(contentType, "application/json") else {
            return GatewayResponse.text(
                .badRequest, "unsupported content-type: \(contentType), only application/json is supported")
        }
        let limit = settings.maxRequestBodySize
        if let length = exchange.request.headers[.contentLength].flatMap(Int.init), length > limit {
            return tooLarge(length)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await exchange.body()
        } catch let error as BodyTooLarge where error.limit > limit {
            return tooLarge(error.size ?? limit + 1)
        }  // Past the gateway's own `proxy.max_body_size`: its 413, the same for every route.
        if buffer.readableBytes > limit { return tooLarge(buffer.readableBytes) }
        if buffer.readableBytes == 0 {
            return GatewayResponse.json(.badRequest, ["message": "could not get body: request body is empty"])
        }
        let body: JSONValue
        do {
            body = try await exchange.parsedJSONBody()
        } catch {
            return GatewayResponse.json(
                .badRequest, ["message": .string("could not parse JSON request body: \(error)")])
        }
        guard let proto = AIProtocol.detect(path: exchange.path, body: body) else {
            return GatewayResponse.text(.badRequest, "no matching AI protocol for the request")
        }
        // A Converse client asks for a stream by its URL (`…/converse-stream`).
        let streaming =
            proto.isStreaming(body) || (proto == .bedrockConverse && exchange.path.hasSuffix("/converse-stream"))
        let ai = AIExchange(clientProtocol: proto, body: body, streaming: streaming)
        exchange.ai = ai
        if settings.logSummaries || settings.logPayloads {
            let record = AILogRecord(summaries: settings.logSummaries, payloads: settings.logPayloads)
            if settings.logPayloads { record.messages = body["messages"] ?? body["input"] ?? .null }
            exchange.aiLog = record
        }
        exchange.logValues["request_type"] = ai.streaming ? "ai_stream" : "ai_chat"
        exchange.logValues["llm_stream"] = ai.streaming ? "true" : "false"
        if let model = ai.clientModel {
            exchange.logValues["request_llm_model"] = model
            exchange.logValues[ModelList.requestLabelKey] = modelList.label(model)
        }
        if let user = body["safety_identifier"]?.stringValue ?? body["user"]?.stringValue {
            exchange.logValues["llm_end_user_id"] = user
        }
        if let semantic {
            let decision = await semantic.decide(body)
            if semantic.options.debugging {
                if let scores = decision.scores { exchange.setResponseHeader("X-AI-Semantic-Scores", scores) }
                exchange.setResponseHeader("X-AI-Semantic-Picked-Instance", settings.instances[decision.index].name)
            }
            select(decision.index, exchange, ai)
            return nil
        }
        guard let first = await pickWithQuotas(exchange, ai) else {
            if proto == .anthropicMessages {
                let error = AnthropicTranslation.error(status: 503, message: "all servers tried")
                return GatewayResponse.json(.serviceUnavailable, error)
            }
            return GatewayResponse.text(.serviceUnavailable, "all servers tried")
        }
        select(first, exchange, ai)
        return nil
    }

    private func tooLarge(_ size: Int) -> Response {
        GatewayResponse.json(
            .contentTooLarge,
            [
                "message": .string(
                    "request size \(size) is greater than the maximum size \(settings.maxRequestBodySize) allowed")
            ])
    }

    func select(_ index: Int, _ exchange: Exchange, _ ai: AIExchange) {
        ai.picked = index
        ai.pendingVerdict = index
        let instance = settings.instances[index]
        exchange.logValues["picked_instance"] = instance.name
        // APISIX's `$llm_model`: the instance's `options.model`, else the body's, for the last attempt.
        let model = instance.model(clientModel: ai.clientModel)
        exchange.logValues["llm_model"] = model
        exchange.logValues[ModelList.modelLabelKey] = modelList.label(model)
    }

    /// The request's `ai-rate-limiting`, when the fallback strategy lets quotas steer picking.
    func quotaGate(_ exchange: Exchange) -> (any InstanceQuotaGate)? {
        guard settings.fallback.rateLimiting, canFallBack else { return nil }
        return rateLimiter(exchange)
    }

    /// The request's `ai-rate-limiting`, if any: quotas are charged to the instance that served.
    func rateLimiter(_ exchange: Exchange) -> (any InstanceQuotaGate)? {
        exchange.plugins.lazy.compactMap { $0.handler as? any InstanceQuotaGate }.first
    }

    /// ``pick(_:_:)`` after the quota gate has brought its view of the candidates' counters up
    /// to date (shared counters: one round trip; local ones need none).
    func pickWithQuotas(_ exchange: Exchange, _ ai: AIExchange) async -> Int? {
        if settings.instances.count > 1, let gate = quotaGate(exchange) {
            let candidates = settings.instances.indices.filter { !ai.tried.contains($0) }.map {
                settings.instances[$0].name
            }
            await gate.prepare(instances: candidates, exchange: exchange)
        }
        return pick(exchange, ai)
    }

    /// The next instance to try, or `nil` when none is left. With a single instance there is no
    /// picking (and no quota check: ai-rate-limiting itself rejects), as in APISIX.
    func pick(_ exchange: Exchange, _ ai: AIExchange) -> Int? {
        if settings.instances.count == 1 { return ai.tried.isEmpty ? 0 : nil }
        let gate = quotaGate(exchange)
        let withQuota: (Int) -> Bool = { index in
            guard let gate else { return true }
            let name = settings.instances[index].name
            if gate.admits(instance: name, exchange: exchange) { return true }
            context.logger.debug("ai instance: \(name) is not available, try to pick another one")
            return false
        }
        // Healthy (and not cooling down) first; `admit` claims a half-open trial slot.
        if let index = choose(exchange, ai, { withQuota($0) && health[$0].admit() }) {
            allUnhealthyLogged.clear()
            return index
        }
        // Nothing healthy: like APISIX, use every instance rather than none (logged once) —
        // except those whose breaker is open, which get no traffic until their trial.
        guard let index = choose(exchange, ai, { withQuota($0) && health[$0].breakerAllows }) else { return nil }
        if allUnhealthyLogged.set() {
            context.logger.warning("all ai instances of \(context.parentKey) are unhealthy, using them all")
        }
        return index
    }

    private func choose(_ exchange: Exchange, _ ai: AIExchange, _ available: (Int) -> Bool) -> Int? {
        switch settings.algorithm {
        case .roundrobin, .semantic:
            return balancer.nextRoundRobin(excluding: ai.tried, available: available)
        case .chash:
            return balancer.ring?.walk(hashKey(exchange)).first { !ai.tried.contains($0) && available($0) }
        }
    }

    private func hashKey(_ exchange: Exchange) -> String {
        let key = settings.hashKey ?? ""
        var value: String?
        switch settings.hashOn {
        case "header": value = exchange.value(of: .header(key.lowercased()))?.stringValue
        case "cookie": value = exchange.cookies[key]
        case "consumer": value = exchange.consumer?.username
        case "vars_combinations":
            var result = ""
            var resolvedAny = false
            for part in balancer.keyParts {
                switch part {
                case .literal(let text): result += text
                case .variable(let variable):
                    if let v = exchange.value(of: variable)?.stringValue {
                        result += v
                        resolvedAny = true
                    }
                }
            }
            value = resolvedAny ? result : nil
        default: value = balancer.keyVariable.flatMap { exchange.value(of: $0)?.stringValue }
        }
        return value ?? exchange.remoteAddress
    }

    // MARK: - Proxy: attempts and fallback

    /// The attempts run until the response head is ready; a client that closes its connection
    /// (FIN or RST) meanwhile cancels them — and so the upstream request, which would otherwise
    /// run to its end, billed and holding a provider slot, for nobody — and is logged as 499.
    /// A stream's relay after its head is watched the same way (see ``stream``).
    func proxy(_ exchange: Exchange) async throws -> Response? {
        guard let ai = exchange.ai, let index = ai.picked else { return nil }
        let watch: ConnectionWatch? =
            if let channel = exchange.channel { await ConnectionWatch.of(channel) } else { nil }
        do {
            return try await ConnectionWatch.cancellingOnClose(watch) {
                try await self.attempts(exchange, ai, from: index)
            }
        } catch is CancellationError where watch?.isClosed == true {
            context.logger.info(
                "client closed the connection: upstream request cancelled",
                metadata: ["request_id": .string(exchange.requestID)])
            return GatewayResponse.json(Self.clientClosedRequest, ["error_msg": "client closed the connection"])
        }
    }

    /// nginx's 499: the client closed the connection before the response was sent.
    static let clientClosedRequest = HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request")

    private func attempts(_ exchange: Exchange, _ ai: AIExchange, from first: Int) async throws -> Response? {
        var index = first
        let resilience = settings.resilience
        let started = ContinuousClock.now
        let deadline = started + .milliseconds(resilience.requestTimeoutMs)
        let sinceStart = { Self.milliseconds(ContinuousClock.now - started) }
        var budget = RetryBudget(policy: resilience.retry)
        var retries = 0
        while true {
            ai.tried.insert(index)
            ai.attempts += 1
            budget.recordAttempt(instance: index, atMs: sinceStart())
            let failure: AttemptFailure
            // In flight per attempt, back to 0 when it ends (a stream: when the relay ends).
            let connection = context.metrics.activeConnections(exchange, node: settings.instances[index].name)
            connection.increment()
            health[index].inFlight.add(1, ordering: .relaxed)
            let attemptStarted = ContinuousClock.now
            let outcome = await attempt(
                index, exchange, ai, deadline: deadline,
                canTakeOver: canTakeOver(ai, afterTimeoutOn: index, fallbacks: retries))
            switch outcome {
            case .success(let response):
                ai.attemptTrace.append(
                    AttemptTrace(
                        instance: settings.instances[index].name, errorClass: nil,
                        status: exchange.upstreamStatus ?? 200,
                        durationMs: Self.milliseconds(ContinuousClock.now - attemptStarted)))
                if !ai.relayingStream {
                    health[index].reportLive(status: exchange.upstreamStatus, failure: nil)
                    health[index].reportToBreaker(nil)
                    ai.pendingVerdict = nil
                    connection.decrement()
                    health[index].inFlight.subtract(1, ordering: .relaxed)
                } else {
                    ai.activeConnection = connection
                    ai.activeInstance = health[index]
                }
                return response
            case .failure(let f):
                connection.decrement()
                health[index].inFlight.subtract(1, ordering: .relaxed)
                // The client left (the attempt was cancelled): no verdict on the instance, no
                // fallback; the log phase gives back a claimed half-open trial.
                if Task.isCancelled { throw CancellationError() }
                failure = f
            }
            let instance = settings.instances[index].name
            let errorClass = failure.errorClass
            exchange.logValues["llm_error_class"] = errorClass.rawValue
            ai.attemptTrace.append(
                AttemptTrace(
                    instance: instance, errorClass: errorClass.rawValue, status: failure.status,
                    durationMs: Self.milliseconds(ContinuousClock.now - attemptStarted)))
            context.metrics.attemptFailure(routeID: exchange.route?.id ?? "", node: instance, errorClass: errorClass)
            report(failure, instance: index)
            ai.pendingVerdict = nil
            // A content-policy refusal goes back as the provider sent it: no retry, no fallback.
            if errorClass == .contentFiltered { return failure.response(for: ai.clientProtocol) }

            // Retryable classes: the same instance again, after a backoff, within the budget.
            if errorClass.isRetryable, resilience.retry.perInstance > 0, health[index].breakerState != "open" {
                let now = sinceStart()
                let decision = budget.decide(
                    instance: index, errorClass: errorClass, retryAfterMs: failure.retryAfterMs, nowMs: now,
                    remainingMs: resilience.requestTimeoutMs - now, unit: Double.random(in: 0..<1))
                switch decision {
                case .retry(let wait):
                    ai.attemptTrace[ai.attemptTrace.count - 1].retryWaitMs = wait
                    context.logger.info(
                        "ai instance \(instance) failed (\(errorClass.rawValue)), retrying it in \(wait)ms")
                    context.metrics.retry(routeID: exchange.route?.id ?? "", node: instance, errorClass: errorClass)
                    try await Task.sleep(for: .milliseconds(wait))
                    continue
                case .moveOn(let reason):
                    context.logger.info("ai instance \(instance) not retried: \(reason)")
                }
            }

            guard canFallBack, shouldFallBack(failure) else { return failure.response(for: ai.clientProtocol) }
            if ContinuousClock.now >= deadline {
                context.logger.info("request_timeout_ms \(resilience.requestTimeoutMs) spent, not falling back")
                return failure.response(for: ai.clientProtocol)
            }
            if let within = settings.retryOnFailureWithinMs, failure.elapsedMs > within {
                context.logger.info(
                    "ai instance failed after \(failure.elapsedMs)ms, exceeding retry_on_failure_within_ms \(within), not retrying"
                )
                return failure.response(for: ai.clientProtocol)
            }
            if let maxRetries = settings.maxRetries {
                retries += 1
                if retries > maxRetries {
                    context.logger.info("reached max_retries \(maxRetries), not retrying")
                    return failure.response(for: ai.clientProtocol)
                }
            }
            var candidate = await pickWithQuotas(exchange, ai)
            // The quota follows the request to its new instance.
            let enforce = quotaGate(exchange) != nil
            while let next = candidate, let limiter = rateLimiter(exchange),
                !(await limiter.moveReservation(to: settings.instances[next].name, exchange: exchange, enforce: enforce))
            {
                ai.tried.insert(next)
                health[next].abandon()  // admitted (perhaps as a trial) but never sent
                candidate = await pickWithQuotas(exchange, ai)
            }
            guard let next = candidate else {
                context.logger.error("failed to pick new AI instance: all servers tried")
                return failure.response(status: 502, for: ai.clientProtocol)
            }
            context.logger.warning(
                "ai instance \(instance) failed (\(errorClass.rawValue), status \(failure.status)), falling back to \(settings.instances[next].name)"
            )
            context.metrics.fallback(
                routeID: exchange.route?.id ?? "", from: instance, to: settings.instances[next].name,
                reason: failure.code ?? "http_\(failure.status)")
            index = next
            select(next, exchange, ai)
        }
    }

    /// Whether another instance could take the request if `index` times out: only then is
    /// `first_token_timeout_ms` enforced. The same gates as a fallback apply.
    func canTakeOver(_ ai: AIExchange, afterTimeoutOn index: Int, fallbacks: Int) -> Bool {
        guard canFallBack, shouldFallBack(status: 504) else { return false }
        if let maxRetries = settings.maxRetries, fallbacks >= maxRetries { return false }
        if let within = settings.retryOnFailureWithinMs, within < settings.resilience.firstTokenTimeoutMs {
            return false
        }
        return settings.instances.indices.contains { $0 != index && !ai.tried.contains($0) }
    }

    /// The log phase: an instance admitted for this request that never got a verdict (the
    /// client left, a quota refused the request) gives back its half-open trial.
    func log(_ exchange: Exchange) {
        guard let ai = exchange.ai else { return }
        // A relayed stream's in-flight gauge ends here, also when its body never ran.
        ai.activeConnection?.decrement()
        ai.activeConnection = nil
        ai.activeInstance?.inFlight.subtract(1, ordering: .relaxed)
        ai.activeInstance = nil
        guard let index = ai.pendingVerdict else { return }
        ai.pendingVerdict = nil
        health[index].abandon()
    }

    /// Feeds a failed attempt to the instance's health: passive checks, the breaker, and a
    /// 429's cooldown.
    func report(_ failure: AttemptFailure, instance index: Int) {
        let kind: HealthState.Failure?
        switch failure.errorClass {
        case .headerTimeout, .firstTokenTimeout, .idleTimeout, .requestTimeout: kind = .timeout
        case .transport: kind = .tcp
        case .server where failure.code != nil: kind = .http
        default: kind = nil
        }
        health[index].reportLive(status: failure.status, failure: kind)
        health[index].reportToBreaker(failure.errorClass)
        if failure.status == 429, settings.fallback.http429 || settings.fallback.rateLimiting {
            health[index].coolDown(seconds: Self.retryAfter(failure.headers) ?? 1)
        }
    }

    /// The provider's retry hint in milliseconds: `retry-after-ms` or `Retry-After` only (an
    /// OpenAI `x-ratelimit-reset-*` header says when a bucket refills, not when to retry).
    static func retryHintMs(_ headers: HTTPFields) -> Int? {
        let hinted = headers[HTTPField.Name("retry-after-ms")!] != nil || headers[.retryAfter] != nil
        return hinted ? retryAfter(headers).flatMap { Saturating.milliseconds($0, maxSeconds: 3600) } : nil
    }

    /// Seconds from `Retry-After` (seconds or an HTTP date), `retry-after-ms`, or OpenAI's
    /// `x-ratelimit-reset-requests` (`1s`, `6m0s`, `20ms`); capped at an hour.
    static func retryAfter(_ headers: HTTPFields) -> Double? {
        func header(_ name: String) -> String? { HTTPField.Name(name).flatMap { headers[$0] } }
        var seconds: Double?
        if let ms = header("retry-after-ms").flatMap(Double.init) {
            seconds = ms / 1000
        } else if let value = header("retry-after") {
            if let s = Double(value) {
                seconds = s
            } else {
                let formatter = DateFormatter()
                formatter.locale = Locale(identifier: "en_US_POSIX")
                formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
                seconds = formatter.date(from: value).map { $0.timeIntervalSinceNow }
            }
        } else if let reset = header("x-ratelimit-reset-requests") {
            seconds = parseGoDuration(reset)
        }
        // `nan`, `inf` and negative values are no hint at all (a NaN reaching `Int(_:)` traps).
        guard let seconds, seconds.isFinite else { return nil }
        return min(max(seconds, 0), 3600)
    }

    /// `1h2m3.5s`, `20ms`, `6m0s` → seconds.
    static func parseGoDuration(_ text: String) -> Double? {
        var total = 0.0
        var number = ""
        var chars = Array(text)[...]
        var matched = false
        while let c = chars.first {
            if c.isNumber || c == "." {
                number.append(c)
                chars = chars.dropFirst()
                continue
            }
            var unit = String(c)
            chars = chars.dropFirst()
            if unit == "m", chars.first == "s" {
                unit = "ms"
                chars = chars.dropFirst()
            }
            guard let value = Double(number) else { return nil }
            number = ""
            matched = true
            switch unit {
            case "h": total += value * 3600
            case "m": total += value * 60
            case "s": total += value
            case "ms": total += value / 1000
            default: return nil
            }
        }
        if !number.isEmpty { return nil }
        return matched ? total : nil
    }

    /// The fallback rules for a failed attempt: APISIX's by status, plus `context_length`.
    /// A context-length 400 never goes back to the instance that refused it.
    func shouldFallBack(_ failure: AttemptFailure) -> Bool {
        switch failure.errorClass {
        case .contentFiltered, .requestTimeout: return false
        case .contextLength:
            return settings.fallback.contextLength || settings.fallbackStatuses.contains(failure.status)
        default: return shouldFallBack(status: failure.status)
        }
    }

    func shouldFallBack(status: Int) -> Bool {
        (status == 429 && settings.fallback.http429) || ((500...599).contains(status) && settings.fallback.http5xx)
            || settings.fallbackStatuses.contains(status)
    }
}

/// Balancer state of one compiled configuration: shared by all requests of the route.
final class AIBalancer: Sendable {
    private let picker: Mutex<PriorityPicker>
    let ring: HashRing?

    enum KeyPart: Sendable {
        case literal(String)
        case variable(RequestVariable)
    }

    /// The chash key compiled once: a `$var` template (`vars_combinations`) or one variable.
    let keyParts: [KeyPart]
    let keyVariable: RequestVariable?

    init(settings: AIProxySettings) {
        let key = settings.hashKey ?? ""
        keyParts = ((try? LogFormat(key))?.parts ?? [.literal(key)]).map { part in
            switch part {
            case .literal(let text): return .literal(text)
            case .variable(let name): return .variable(RequestVariable(name: name))
            }
        }
        keyVariable = key.isEmpty ? nil : RequestVariable(name: key)
        let start = settings.instances.isEmpty ? 0 : Int.random(in: 0..<settings.instances.count)
        picker = Mutex(
            PriorityPicker(
                priorities: settings.instances.map(\.priority), weights: settings.instances.map(\.weight),
                start: start))
        ring =
            settings.algorithm == .chash
            ? HashRing(names: settings.instances.map(\.name), weights: settings.instances.map(\.weight)) : nil
    }

    func nextRoundRobin(excluding tried: Set<Int>, available: (Int) -> Bool) -> Int? {
        picker.withLock { $0.pick(excluding: tried, available: available) }
    }
}

/// Remembers that something was logged (e.g. "all instances unhealthy"), so it is logged once
/// per episode.
final class OnceFlag: Sendable {
    private let flag = Mutex(false)

    /// Sets the flag; `true` if it was not set (log now).
    func set() -> Bool {
        flag.withLock { flag in
            defer { flag = true }
            return !flag
        }
    }

    func clear() { flag.withLock { $0 = false } }
}

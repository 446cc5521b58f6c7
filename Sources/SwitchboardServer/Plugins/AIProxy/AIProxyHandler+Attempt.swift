import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import SwitchboardCore

/// A failed attempt: what the client gets if nothing else can be tried.
struct AttemptFailure {
    var status: Int
    var body: [UInt8]
    var contentType: String?
    var headers: HTTPFields = [:]
    var elapsedMs: Int
    /// The gateway's error code when the gateway made the failure (`upstream_timeout`, ...).
    var code: String?
    /// What kind of failure this was: decides retry, fallback and the breaker.
    var errorClass: ErrorClass = .server
    /// The provider's wait hint (`Retry-After`, `retry-after-ms`), in milliseconds.
    var retryAfterMs: Int?

    /// What the client gets: the failure as it is, or for an Anthropic client in Anthropic's
    /// error shape (its SDKs read nothing else), whichever provider or gateway made it.
    func response(status override: Int? = nil, for client: AIProtocol) -> Response {
        let code = override ?? status
        var fields = headers
        var bytes = body
        if client == .anthropicMessages {
            bytes = AnthropicTranslation.error(status: code, body: body).serializedBytes()
            fields[.contentType] = "application/json"
        } else if let contentType {
            fields[.contentType] = contentType
        }
        return Response(
            status: HTTPResponse.Status(code: code), headers: fields,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// An OpenAI-style error body, so SDKs raise a proper error.
    static func gatewayError(
        status: Int, message: String, code: String, elapsedMs: Int, errorClass: ErrorClass,
        type: String = "upstream_error"
    ) -> AttemptFailure {
        let body: JSONValue = ["error": ["message": .string(message), "type": .string(type), "code": .string(code)]]
        return AttemptFailure(
            status: status, body: body.serializedBytes(), contentType: "application/json", elapsedMs: elapsedMs,
            code: code, errorClass: errorClass)
    }
}

enum AttemptOutcome {
    case success(Response)
    case failure(AttemptFailure)
}

extension AIProxyHandler {
    static let errorBodyLimit = 1 << 20
    /// The largest answer read into memory when `max_response_bytes` is not set.
    static let defaultMaxResponseBytes = 64 * 1024 * 1024

    /// Upstream response headers the client gets besides the status and Content-Type: rate-limit
    /// and retry hints, and the provider's request id (as `X-Upstream-Request-Id`, since
    /// `X-Request-Id` is the gateway's own).
    static func passthroughHeaders(_ headers: HTTPHeaders) -> HTTPFields {
        var fields = HTTPFields()
        for header in headers {
            let raw = header.name
            let name: String
            if ASCII.equals(raw, "retry-after") || ASCII.equals(raw, "retry-after-ms")
                || ASCII.hasPrefix(raw, "x-ratelimit-") || ASCII.hasPrefix(raw, "anthropic-ratelimit-")
            {
                name = header.name
            } else if ASCII.equals(raw, "x-request-id") {
                name = "X-Upstream-Request-Id"
            } else {
                continue
            }
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: header.value)) }
        }
        return fields
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }

    /// Where in an attempt a transport error happened, for its class.
    enum Phase {
        /// Waiting for the response head, due within `waitMs`; `budgetBound` when the
        /// request's budget, not the header timeout, set that deadline.
        case head(waitMs: Int, budgetBound: Bool)
        /// Reading the body; `idleMs` is the read timeout.
        case body(idleMs: Int)
    }

    /// Maps a transport error to 504 (timeout) or 502 (refused, reset, TLS, anything else),
    /// with its error class and a message that says what happened at `target` (`host:port`).
    static func transportFailure(_ error: any Error, elapsedMs: Int, phase: Phase, target: String) -> AttemptFailure {
        let stage: UpstreamError.Stage
        switch phase {
        case .head(let waitMs, let budgetBound): stage = .head(waitMs: waitMs, budgetBound: budgetBound)
        case .body(let idleMs): stage = .body(idleMs: idleMs)
        }
        let text = UpstreamError.describe(error, target: target, stage: stage)
        if let clientError = error as? HTTPClientError, clientError == .connectTimeout {
            return .gatewayError(
                status: 504, message: text, code: "upstream_timeout", elapsedMs: elapsedMs, errorClass: .transport)
        }
        if UpstreamClients.isTimeout(error) {
            let errorClass: ErrorClass
            switch phase {
            case .head(_, let budgetBound):
                let deadline = (error as? HTTPClientError) == .deadlineExceeded
                errorClass = deadline && budgetBound ? .requestTimeout : .headerTimeout
            case .body: errorClass = .idleTimeout
            }
            return .gatewayError(
                status: 504, message: text, code: "upstream_timeout", elapsedMs: elapsedMs, errorClass: errorClass)
        }
        return .gatewayError(
            status: 502, message: text, code: "upstream_unreachable", elapsedMs: elapsedMs, errorClass: .transport)
    }

    /// The URL, method, headers and body of one attempt.
    func buildRequest(
        _ instance: AIInstance, _ exchange: Exchange, _ ai: AIExchange, target: AIProtocol, body: ByteBuffer,
        bearer: String? = nil
    ) -> UpstreamRequest? {
        guard let endpoint = instance.resolvedEndpoint else { return nil }
        let path: String
        if target == .passthrough {
            path = endpoint.path ?? exchange.path
        } else {
            let model = instance.model(clientModel: ai.clientModel)
            path = endpoint.path ?? instance.path(for: target, model: model, streaming: ai.streaming) ?? exchange.path
        }
        // auth.query, then the endpoint's query over it; passthrough also keeps the client's
        // own arguments (which cannot override auth.query).
        var query: [(String, String)] = []
        if target == .passthrough, let raw = exchange.upstreamQuery {
            // Neither the instance's own auth.query nor the client's key-auth key go through.
            let protected = Set(instance.authQuery.map(\.name)).union(exchange.redactedQueryArgs)
            for pair in raw.split(separator: "&") {
                let key = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0]
                if !protected.contains(Exchange.decode(key)) {
                    let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    query.append((String(parts[0]), parts.count > 1 ? String(parts[1]) : ""))
                }
            }
        }
        let endpointKeys = Set(endpoint.query.map(\.0))
        for (name, value) in instance.authQuery where !endpointKeys.contains(name) {
            query.append((Self.escape(name), Self.escape(value)))
        }
        query.append(contentsOf: endpoint.query)
        let queryText = query.isEmpty ? "" : "?" + query.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        var request = UpstreamRequest(
            scheme: endpoint.scheme, host: endpoint.host, port: endpoint.port,
            head: HTTPRequestHead(
                version: .http1_1, method: target == .passthrough ? HTTPMethod(rawValue: exchange.method) : .POST,
                uri: path + queryText),
            body: body, keepAlive: settings.keepalive)
        // The client's credentials (for the gateway, or for a provider the operator did not
        // choose) never reach the provider; only the instance's own auth does.
        let authNames = Set(instance.authHeaders.map(\.name))
        let listed = exchange.request.headers[.connection] == nil ? [] : exchange.connectionListedHeaders
        for field in exchange.request.headers {
            let lower = field.name.canonicalName
            if Self.droppedRequestHeaders.contains(lower) || authNames.contains(lower)
                || exchange.credentialHeaders.contains(lower) || listed.contains(lower)
                // Anthropic's version and beta flags mean nothing to (or upset) other providers.
                || (target != .anthropicMessages && lower.hasPrefix("anthropic-"))
                // A client's own AWS date or session token must not sit beside the signature.
                || (instance.aws != nil && lower.hasPrefix("x-amz-"))
            {
                continue
            }
            request.head.headers.add(name: lower, value: field.value)
        }
        for (name, value) in exchange.upstreamHeaderEdits {
            if let value {
                request.head.headers.replaceOrAdd(name: name.canonicalName, value: value)
            } else {
                request.head.headers.remove(name: name.canonicalName)
            }
        }
        for (name, value) in instance.authHeaders { request.head.headers.replaceOrAdd(name: name, value: value) }
        if let bearer { request.head.headers.replaceOrAdd(name: "authorization", value: "Bearer \(bearer)") }
        request.head.headers.replaceOrAdd(name: "content-type", value: "application/json")
        // Anthropic requires a version; OpenAI clients (and some Anthropic ones) send none.
        if target == .anthropicMessages, !request.head.headers.contains(name: "anthropic-version") {
            request.head.headers.add(name: "anthropic-version", value: AnthropicTranslation.defaultVersion)
        }
        request.head.headers.replaceOrAdd(name: "host", value: endpoint.authority)
        request.head.headers.replaceOrAdd(name: "x-request-id", value: exchange.requestID)
        if !settings.keepalive { request.head.headers.replaceOrAdd(name: "connection", value: "close") }
        if let aws = instance.aws {
            // Signed last, over the request exactly as it goes out.
            let signed = AWSSigV4.sign(
                method: request.head.method.rawValue, path: path,
                query: query.isEmpty ? nil : String(queryText.dropFirst()),
                headers: [
                    ("content-type", "application/json"), ("host", endpoint.authority),
                ], body: Array(buffer: body), service: "bedrock", region: instance.region ?? "us-east-1",
                credentials: aws, amzDate: AWSSigV4.amzDate(Int(Date().timeIntervalSince1970)))
            for (name, value) in signed.headers { request.head.headers.replaceOrAdd(name: name, value: value) }
        }
        exchange.logValues["upstream_scheme"] = endpoint.scheme
        exchange.logValues["upstream_host"] = endpoint.authority
        // Logged without secrets: neither the instance's `auth.query` nor a client's key.
        var loggedURI = path
        if !query.isEmpty {
            let secrets = exchange.redactedQueryArgs.union(instance.authQuery.map(\.name))
            loggedURI += "?" + Exchange.redact(query: String(queryText.dropFirst()), names: secrets)
        }
        exchange.logValues["upstream_uri"] = loggedURI
        exchange.upstreamAddr = "\(endpoint.host):\(endpoint.port)"
        return request
    }

    static let droppedRequestHeaders: Set<String> = [
        "host", "content-length", "accept-encoding", "connection", "keep-alive", "proxy-connection", "te",
        "trailer", "transfer-encoding", "upgrade", "content-type",
        // Credentials a client may send for some provider: only the instance's auth is sent.
        "authorization", "proxy-authorization", "api-key", "x-api-key", "x-goog-api-key",
    ]

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(
            withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+")))
            ?? text
    }

    /// The pooled client for this request. Its read timeout is the stream idle timeout for
    /// streams (no byte for that long is idle, also while waiting for the head) and the longer
    /// of the header and idle timeouts otherwise (a whole answer comes after its generation).
    func client(streaming: Bool) -> HTTPClient {
        context.clients.client(readTimeoutMs: readTimeoutMs(streaming: streaming), verifyTLS: settings.sslVerify)
    }

    /// Sends `request` and waits for the head until the header timeout or the request's
    /// deadline, whichever comes first. Plain-HTTP upstreams go through the gateway's own
    /// per-event-loop pool (``UpstreamHTTP1Pool``), TLS ones through AsyncHTTPClient.
    func send(_ request: UpstreamRequest, streaming: Bool, deadline: ContinuousClock.Instant) async throws(SendError)
        -> UpstreamAnswer
    {
        let header = Duration.milliseconds(settings.resilience.responseHeaderTimeoutMs)
        let now = ContinuousClock.now
        let budgetBound = deadline < now + header
        let wait = min(header, max(deadline - now, .zero))
        let headDeadline = NIODeadline.now() + .nanoseconds(Int64(wait / .nanoseconds(1)))
        do {
            guard request.scheme == "http" else {
                let response = try await client(streaming: streaming).execute(
                    request.clientRequest, deadline: headDeadline)
                return UpstreamAnswer(response: response, pooledBody: nil)
            }
            let read = Int64(readTimeoutMs(streaming: streaming))
            return try await context.clients.http1.execute(
                request, deadline: headDeadline, readTimeout: .milliseconds(read),
                connectTimeout: .milliseconds(min(read, 10000)))
        } catch {
            throw SendError(error: error, budgetBound: budgetBound, waitMs: Self.milliseconds(wait))
        }
    }

    /// The longest silence while reading: the stream idle timeout for streams (also while
    /// waiting for the head), else the longer of the header and idle timeouts.
    func readTimeoutMs(streaming: Bool) -> Int {
        let r = settings.resilience
        return streaming ? r.streamIdleTimeoutMs : max(r.responseHeaderTimeoutMs, r.streamIdleTimeoutMs)
    }

    struct SendError: Error {
        var error: any Error
        var budgetBound: Bool
        var waitMs: Int
    }

    struct RequestBudgetSpent: Error {}

    /// Reads a whole (non-streamed) body. The read timeout bounds each gap; when the request's
    /// budget ends sooner than a read timeout could fire, the read is also raced against it.
    func collect(_ body: HTTPClientResponse.Body, upTo limit: Int, deadline: ContinuousClock.Instant)
        async throws -> ByteBuffer
    {
        let r = settings.resilience
        let readTimeout = Duration.milliseconds(max(r.responseHeaderTimeoutMs, r.streamIdleTimeoutMs))
        if deadline - ContinuousClock.now >= readTimeout { return try await body.collect(upTo: limit) }
        return try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask { try await body.collect(upTo: limit) }
            group.addTask {
                try await Task.sleep(until: deadline, clock: .continuous)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let buffer = first else { throw RequestBudgetSpent() }
            return buffer
        }
    }

    /// One attempt against one instance. `deadline` is the request's budget; `canTakeOver`
    /// says whether another instance could take the request if this one is slow to its first
    /// token (only then is `first_token_timeout_ms` enforced).
    func attempt(
        _ index: Int, _ exchange: Exchange, _ ai: AIExchange, deadline: ContinuousClock.Instant, canTakeOver: Bool
    ) async -> AttemptOutcome {
        let instance = settings.instances[index]
        guard let target = instance.target(for: ai.clientProtocol) else {
            let message =
                "provider \(instance.provider.name) does not support \(ai.clientProtocol.rawValue) protocol (supported: \(instance.provider.supportedList))"
            return .failure(
                AttemptFailure(
                    status: 400, body: Array(message.utf8), contentType: "text/plain", elapsedMs: 0,
                    errorClass: .clientError))
        }
        let translated = target != ai.clientProtocol
        let source = translated ? Self.translate(ai.body, from: ai.clientProtocol, to: target) : ai.body
        let shaped = RequestShaper.shape(source, target: target, instance: instance)
        let tools = (shaped.body ?? source)["tools"]?.arrayValue?.count ?? 0
        exchange.logValues["llm_tool_count"] = String(tools)
        let bytes: ByteBuffer
        // (`Optional`s spelled out: a bare `nil` would be JSON null, JSONValue being nil-literal convertible.)
        let changed: JSONValue? = shaped.body ?? (translated ? Optional(source) : JSONValue?.none)
        if let body = changed {
            bytes = ByteBuffer(bytes: body.serializedBytes())
        } else {
            bytes = exchange.bufferedBody ?? ByteBuffer()  // unchanged: the client's exact bytes
        }
        if instance.endpoint?.path == nil, target != .passthrough, instance.provider.paths[target] != nil,
            instance.path(for: target, model: instance.model(clientModel: ai.clientModel)) == nil
        {
            let message =
                "could not resolve upstream path: ensure the route or request body specifies a model, or that override.endpoint includes a path"
            let body: JSONValue = ["error_msg": .string(message)]
            return .failure(
                AttemptFailure(
                    status: 400, body: body.serializedBytes(), contentType: "application/json", elapsedMs: 0,
                    errorClass: .clientError))
        }
        let bearer: String?
        do {
            bearer = try await accessToken(for: instance)
        } catch {
            return .failure(
                .gatewayError(
                    status: 502, message: error.description, code: "gcp_auth_failed", elapsedMs: 0, errorClass: .server)
            )
        }
        guard let request = buildRequest(instance, exchange, ai, target: target, body: bytes, bearer: bearer) else {
            return .failure(
                .gatewayError(
                    status: 500, message: "instance \(instance.name) has no endpoint", code: "no_endpoint",
                    elapsedMs: 0, errorClass: .clientError))
        }
        let started = ContinuousClock.now
        let elapsed = { Self.milliseconds(ContinuousClock.now - started) }
        // Counted as upstream wait until this attempt's answer has been read (or failed).
        defer {
            if !ai.relayingStream {
                exchange.upstreamWait += ContinuousClock.now - started
                exchange.upstreamResponseTime = ContinuousClock.now - started
            }
        }
        let answer: UpstreamAnswer
        do {
            answer = try await send(request, streaming: ai.streaming, deadline: deadline)
        } catch {
            exchange.logValues["apisix_upstream_response_time"] = String(elapsed())
            exchange.upstreamStatus = nil
            return .failure(
                Self.transportFailure(
                    error.error, elapsedMs: elapsed(),
                    phase: .head(waitMs: error.waitMs, budgetBound: error.budgetBound),
                    target: exchange.upstreamAddr ?? "the upstream"))
        }
        let response = answer.response
        let status = Int(response.status.code)
        exchange.upstreamStatus = status
        let contentType = response.headers.first(name: "content-type")
        let passthrough = Self.passthroughHeaders(response.headers)

        if status >= 400 {
            // Every error answer is read (bounded) and classified; 4xx other than
            // context-length and those listed in fallback_http_statuses go back as sent.
            let body =
                (try? await collect(response.body, upTo: Self.errorBodyLimit, deadline: deadline)).map {
                    Array(buffer: $0)
                } ?? []
            let ms = elapsed()
            exchange.logValues["apisix_upstream_response_time"] = String(ms)
            exchange.logValues["llm_time_to_first_token"] = String(ms)
            let retryAfter = Self.retryHintMs(passthrough)
            return .failure(
                AttemptFailure(
                    status: status, body: body, contentType: contentType, headers: passthrough, elapsedMs: ms,
                    errorClass: ErrorClass.classify(status: status, body: body), retryAfterMs: retryAfter))
        }
        if let contentType,
            ASCII.contains(contentType, "text/event-stream")
                || ASCII.contains(contentType, "application/vnd.amazon.eventstream")
        {
            let first = settings.resilience.firstTokenTimeoutMs
            let contentDeadline = canTakeOver ? min(started + .milliseconds(first), deadline) : deadline
            return await stream(
                answer, started: started, contentDeadline: contentDeadline, budgetBound: contentDeadline == deadline,
                exchange: exchange, ai: ai, index: index, target: target, dropUsage: shaped.injectedUsage,
                headers: passthrough, contentType: contentType)
        }

        // A whole (non-streamed) answer.
        let limit = settings.maxResponseBytes ?? Self.defaultMaxResponseBytes
        if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > limit {
            context.logger.warning(
                "aborting AI response: Content-Length \(length) exceeds max_response_bytes \(limit)")
            return .failure(
                AttemptFailure(
                    status: 502, body: Array("max_response_bytes exceeded".utf8), contentType: "text/plain",
                    elapsedMs: elapsed(), errorClass: .responseTooLarge))
        }
        let body: ByteBuffer
        do {
            body = try await collect(response.body, upTo: limit, deadline: deadline)
        } catch is RequestBudgetSpent {
            return .failure(
                .gatewayError(
                    status: 504, message: "request_timeout_ms spent while reading the answer",
                    code: "upstream_timeout", elapsedMs: elapsed(), errorClass: .requestTimeout))
        } catch let error as NIOTooManyBytesError {
            _ = error
            return .failure(
                AttemptFailure(
                    status: 502, body: Array("max_response_bytes exceeded".utf8), contentType: "text/plain",
                    elapsedMs: elapsed(), errorClass: .responseTooLarge))
        } catch {
            let r = settings.resilience
            return .failure(
                Self.transportFailure(
                    error, elapsedMs: elapsed(),
                    phase: .body(idleMs: max(r.responseHeaderTimeoutMs, r.streamIdleTimeoutMs)),
                    target: exchange.upstreamAddr ?? "the upstream"))
        }
        let ms = elapsed()
        exchange.logValues["apisix_upstream_response_time"] = String(ms)
        exchange.logValues["llm_time_to_first_token"] = String(ms)
        let payloads = exchange.aiLog?.payloads == true
        if let summary = body.withUnsafeReadableBytes({
            ResponseSummary.read($0.assumingMemoryBound(to: UInt8.self), keepText: payloads)
        }) {
            if let usage = summary.usage { record(usage, exchange, ai) }
            // The model the provider reported (`$llm_model` stays the requested one, as in APISIX).
            if let model = summary.model { exchange.logValues["llm_response_model"] = model }
            if summary.hasToolCalls { exchange.logValues["llm_has_tool_calls"] = "true" }
            if payloads, let log = exchange.aiLog { log.responseText = summary.texts.joined(separator: " ") }
        }
        var headers = passthrough
        if let contentType { headers[.contentType] = contentType }
        var answerBody = body
        if translated, let answer = try? JSONParser.parse(Array(buffer: body)) {
            if target == .anthropicMessages {
                if answer["content"]?.arrayValue?.contains(where: { $0["type"]?.stringValue == "tool_use" }) == true {
                    exchange.logValues["llm_has_tool_calls"] = "true"
                }
                if payloads, let log = exchange.aiLog {
                    log.responseText = AnthropicTranslation.texts(of: answer["content"] ?? .null).joined()
                }
            }
            let translatedAnswer = Self.translate(
                answer: answer, from: target, to: ai.clientProtocol,
                model: instance.model(clientModel: ai.clientModel))
            // Vertex's predictions carry token counts, not usage: the translation sums them.
            if target == .vertexPredict, let usage = TokenUsage(translatedAnswer["usage"]) {
                record(usage, exchange, ai)
            }
            answerBody = ByteBuffer(bytes: translatedAnswer.serializedBytes())
            headers[.contentType] = "application/json"
        }
        return .success(
            Response(
                status: HTTPResponse.Status(code: status), headers: headers, body: ResponseBody(byteBuffer: answerBody))
        )
    }

    /// The OAuth2 token an instance with `auth.gcp` is called with (`nil` for the others).
    func accessToken(for instance: AIInstance) async throws(GCPAccessTokens.Failure) -> String? {
        guard let gcp = instance.gcp else { return nil }
        do {
            return try await context.services.gcpTokens.token(
                for: gcp, clients: context.clients, verifyTLS: settings.sslVerify)
        } catch {
            context.logger.error("ai instance \(instance.name): \(error)")
            throw error
        }
    }

    /// A client's request in the protocol of the instance that serves it.
    static func translate(_ body: JSONValue, from client: AIProtocol, to target: AIProtocol) -> JSONValue {
        switch (client, target) {
        case (.anthropicMessages, .openaiChat): return AnthropicTranslation.chatRequest(fromMessages: body)
        case (.openaiChat, .anthropicMessages): return AnthropicTranslation.messagesRequest(fromChat: body)
        case (.openaiEmbeddings, .vertexPredict): return VertexTranslation.predictRequest(fromEmbeddings: body)
        case (.openaiChat, .bedrockConverse):
            // The model goes in the URL; `stream` picks `converse-stream` and is then removed.
            var converse = BedrockTranslation.converseRequest(fromChat: body)
            if let stream = body["stream"] { converse["stream"] = stream }
            return converse
        default: return body
        }
    }

    /// A provider's whole answer in the client's protocol.
    static func translate(answer: JSONValue, from target: AIProtocol, to client: AIProtocol, model: String?)
        -> JSONValue
    {
        switch (target, client) {
        case (.vertexPredict, .openaiEmbeddings):
            return VertexTranslation.embeddingsAnswer(fromPredict: answer, model: model)
        case (.bedrockConverse, .openaiChat):
            return BedrockTranslation.chatAnswer(fromConverse: answer, model: model, created: unixTime())
        case (.openaiChat, .anthropicMessages): return AnthropicTranslation.messagesAnswer(fromChat: answer)
        case (.anthropicMessages, .openaiChat):
            return AnthropicTranslation.chatAnswer(fromMessages: answer, created: unixTime())
        default: return answer
        }
    }

    func record(_ usage: TokenUsage, _ exchange: Exchange, _ ai: AIExchange) {
        ai.usage = usage
        exchange.logValues["llm_prompt_tokens"] = String(usage.prompt)
        exchange.logValues["llm_completion_tokens"] = String(usage.completion)
        exchange.logValues["llm_total_tokens"] = String(usage.total)
        exchange.logValues["llm_cache_read_input_tokens"] = String(usage.cacheRead)
        exchange.logValues["llm_cache_creation_input_tokens"] = String(usage.cacheCreation)
        exchange.logValues["llm_reasoning_tokens"] = String(usage.reasoning)
    }
}

/// Why an attempt against a provider failed. Every failed attempt is classified once, and the
/// class decides what happens next (retry the instance, fall over, or answer the client).
public enum ErrorClass: String, Sendable, CaseIterable {
    /// 429, possibly with a `Retry-After`.
    case rateLimited = "rate_limited"
    /// 500, 502, 503, 504, 529, 408 (and any other 5xx).
    case server
    /// Refused, reset or closed before any response byte (also on a reused pooled connection).
    case transport
    /// No response head within `response_header_timeout_ms`.
    case headerTimeout = "header_timeout"
    /// No content-bearing chunk within `first_token_timeout_ms` of the request's start.
    case firstTokenTimeout = "first_token_timeout"
    /// A gap between upstream chunks longer than `stream_idle_timeout_ms`.
    case idleTimeout = "idle_timeout"
    /// The request's `request_timeout_ms` budget ran out.
    case requestTimeout = "request_timeout"
    /// A 400 saying the prompt does not fit the model's context window.
    case contextLength = "context_length_exceeded"
    /// A 400 saying the provider's content policy refused the request.
    case contentFiltered = "content_filtered"
    /// Any other 4xx: the request itself is wrong, no retry fixes it.
    case clientError = "client_error"
    /// The upstream ended or errored after content was relayed.
    case streamBroken = "stream_broken"
    /// The answer exceeded `max_response_bytes`: the same request would fail the same way.
    case responseTooLarge = "response_too_large"

    /// Worth sending again to the same instance after a backoff.
    public var isRetryable: Bool {
        switch self {
        case .rateLimited, .server, .transport: return true
        default: return false
        }
    }

    /// Counts towards the circuit breaker: the instance, not the request, is at fault.
    public var isInstanceFailure: Bool {
        switch self {
        case .rateLimited, .server, .transport, .headerTimeout, .firstTokenTimeout, .idleTimeout, .streamBroken:
            return true
        default: return false
        }
    }

    /// A timeout: falls over at once, never retried on the same instance.
    public var isTimeout: Bool {
        switch self {
        case .headerTimeout, .firstTokenTimeout, .idleTimeout, .requestTimeout: return true
        default: return false
        }
    }

    /// The class of an HTTP error answer, from its status and (for 4xx) its body.
    public static func classify(status: Int, body: some Collection<UInt8>) -> ErrorClass {
        switch status {
        case 429: return .rateLimited
        case 408, 500...599: return .server
        case 400...499:
            let text = errorText(body)
            if contextLengthMarkers.contains(where: text.contains) { return .contextLength }
            if contentFilterMarkers.contains(where: text.contains) { return .contentFiltered }
            return .clientError
        default: return .server
        }
    }

    /// Phrases providers use for a prompt over the context window: OpenAI and DeepSeek
    /// (`context_length_exceeded`, "maximum context length"), Anthropic ("prompt is too long",
    /// "exceed context limit"), Gemini and OpenAI-compatible servers (vLLM, Ollama, ...).
    static let contextLengthMarkers = [
        "context_length_exceeded", "maximum context length", "context length", "context_length",
        "prompt is too long", "exceed context limit", "exceeds the context window", "context window",
        "input is too long", "too many tokens", "string_above_max_length", "reduce the length of the messages",
        "exceeds the maximum number of tokens",
    ]

    /// Content-policy refusals: OpenAI (`content_policy_violation`), Azure (`content_filter`,
    /// `ResponsibleAIPolicyViolation`), Anthropic and Gemini safety blocks.
    static let contentFilterMarkers = [
        "content_policy_violation", "content_filter", "responsibleaipolicyviolation", "content management policy",
        "safety system", "blocked by safety", "prohibited_content", "content policy",
    ]

    /// The lower-cased text of the fields providers put their error in (code, type, message,
    /// Azure's inner error), or the whole body when it is not JSON. Bounded to 64 KiB.
    static func errorText(_ body: some Collection<UInt8>) -> String {
        let bytes = Array(body.prefix(65536))
        guard let json = try? JSONParser.parse(bytes) else {
            return String(decoding: bytes, as: UTF8.self).lowercased()
        }
        let error = json["error"] ?? json
        var parts: [String] = []
        for value in [
            error["code"], error["type"], error["message"], error["status"], error["innererror"]?["code"],
            json["message"], json["code"], json["detail"], error.stringValue.map { JSONValue.string($0) },
        ] {
            if let s = value?.stringValue { parts.append(s) }
        }
        return parts.joined(separator: " ").lowercased()
    }
}

import Foundation

/// One provider instance of `ai-proxy-multi` (or the single provider of `ai-proxy`), compiled
/// from its validated JSON.
public struct AIInstance: Sendable {
    public var name: String
    public var provider: AIProvider
    public var priority: Int
    public var weight: Int
    /// Lower-cased header names; these win over the client's headers.
    public var authHeaders: [(name: String, value: String)]
    public var authQuery: [(name: String, value: String)]
    /// Flat-overwritten into every request body (`model`, `temperature`, ...).
    public var options: JSONObject
    public var endpoint: AIEndpoint?
    /// `override.llm_options.max_tokens`.
    public var maxTokens: Int?
    public var requestBody: [AIProtocol: JSONValue]
    public var forceOverride: Bool
    public var checks: HealthCheckConfig?
    /// Accepts a trailing assistant message as the start of its answer (stream continuation).
    public var supportsAssistantPrefill: Bool
    /// The `semantic` balancer's phrasings of what this instance is for.
    public var examples: [String]
    /// The score this instance must reach under the `semantic` balancer (else `semantic_opts`').
    public var threshold: Double?
    /// `provider_conf` (Vertex AI's project and region, Bedrock's region).
    public var projectID: String?
    public var region: String?
    /// `auth.gcp`: a Google service account whose access tokens authenticate the calls.
    public var gcp: GCPAuth?
    /// `auth.aws`: the credentials Bedrock calls are signed with (SigV4).
    public var aws: AWSAuth?

    public init(json: JSONValue, name: String? = nil) {
        self.name = name ?? json["name"]?.stringValue ?? ""
        self.provider = AIProvider.all[json["provider"]?.stringValue ?? ""] ?? .openAICompatible
        self.priority = json["priority"]?.intValue ?? 0
        self.weight = json["weight"]?.intValue ?? 0
        self.authHeaders = AIInstance.stringPairs(json["auth"]?["header"]).map { ($0.0.lowercased(), $0.1) }
        self.authQuery = AIInstance.stringPairs(json["auth"]?["query"])
        self.options = json["options"]?.objectValue ?? [:]
        self.endpoint = json["override"]?["endpoint"]?.stringValue.flatMap(AIEndpoint.init)
        self.maxTokens = json["override"]?["llm_options"]?["max_tokens"]?.intValue
        var bodies: [AIProtocol: JSONValue] = [:]
        for (key, value) in json["override"]?["request_body"]?.objectValue ?? [:] {
            if let proto = AIProtocol(rawValue: key) { bodies[proto] = value }
        }
        self.requestBody = bodies
        self.forceOverride = json["override"]?["request_body_force_override"]?.boolValue ?? false
        self.supportsAssistantPrefill = json["supports_assistant_prefill"]?.boolValue ?? false
        self.examples = (json["examples"]?.arrayValue ?? []).compactMap(\.stringValue)
        self.threshold = json["threshold"]?.doubleValue
        self.projectID = json["provider_conf"]?["project_id"]?.stringValue
        self.region = json["provider_conf"]?["region"]?.stringValue
        self.gcp = json["auth"]?["gcp"].map(GCPAuth.init)
        self.aws = json["auth"]?["aws"].flatMap(AWSAuth.init)
        var checks = HealthCheckConfig(json["checks"])
        if var active = checks?.active {
            // Probes carry the instance's credentials, as APISIX's checker does.
            for (name, value) in authHeaders where !active.headers.contains(where: { $0.0.lowercased() == name }) {
                active.headers.append((name, value))
            }
            if !authQuery.isEmpty {
                let query = authQuery.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
                active.path += (active.path.contains("?") ? "&" : "?") + query
            }
            checks?.active = active
        }
        self.checks = checks
    }

    /// Where this instance is called: `override.endpoint`, else the provider's default host
    /// (with `{region}` filled in); `nil` when neither is known.
    public var resolvedEndpoint: AIEndpoint? {
        if let endpoint { return endpoint }
        guard var host = provider.defaultHost else { return nil }
        if host.contains("{region}") {
            guard let region, !region.isEmpty else { return nil }
            host = host.replacingOccurrences(of: "{region}", with: region)
        }
        return AIEndpoint(scheme: provider.defaultScheme, host: host, port: provider.defaultPort, path: nil)
    }

    /// The provider's path for `target` with `{project}`, `{region}` and `{model}` filled in;
    /// `nil` when the provider has none or a placeholder has no value.
    public func path(for target: AIProtocol, model: String?, streaming: Bool = false) -> String? {
        guard var path = (streaming ? provider.streamPaths[target] : nil) ?? provider.paths[target] else { return nil }
        for (placeholder, value) in [("{project}", projectID), ("{region}", region), ("{model}", model)]
        where path.contains(placeholder) {
            guard let value, !value.isEmpty,
                let escaped = value.addingPercentEncoding(withAllowedCharacters: Self.pathSegment)
            else { return nil }
            path = path.replacingOccurrences(of: placeholder, with: escaped)
        }
        return path
    }

    /// What a value may keep unescaped inside one path segment (`:` escaped too, as AWS's SDKs
    /// write Bedrock model ids: `…-v1%3A0`).
    static let pathSegment: CharacterSet = {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/?#:")
        return allowed
    }()

    /// The protocol this instance is spoken to for a client speaking `client`, or `nil` when it
    /// cannot serve it: the client's own when the provider speaks it, else a translation
    /// (Anthropic Messages to an OpenAI-style chat provider). A provider with
    /// ``AIProvider/chatVia`` takes OpenAI chat requests in that protocol, unless
    /// `override.endpoint` names a path of another protocol (Anthropic's OpenAI-compatible one).
    public func target(for client: AIProtocol) -> AIProtocol? {
        if client == .openaiChat, let via = provider.chatVia, let viaPath = provider.paths[via] {
            guard let path = endpoint?.path else { return via }
            let last = viaPath.split(separator: "/").last.map(String.init) ?? viaPath
            return path.hasSuffix(last) ? via : .openaiChat
        }
        if client == .openaiEmbeddings, let via = provider.embeddingsVia { return via }
        if provider.supports(client) { return client }
        if client == .anthropicMessages, provider.supports(.openaiChat) { return .openaiChat }
        return nil
    }

    /// An `auth.header` / `auth.query` map as pairs (its string values).
    public static func stringPairs(_ value: JSONValue?) -> [(String, String)] {
        (value?.objectValue ?? [:]).compactMap { key, v in v.stringValue.map { (key, $0) } }
    }

    /// The model this instance asks for: `options.model`, else the client's.
    public func model(clientModel: String?) -> String? {
        options["model"]?.stringValue ?? clientModel
    }
}

/// Which failures move a request to another instance.
public struct FallbackStrategy: Sendable, Equatable {
    public var http429 = false
    public var http5xx = false
    /// Skip instances whose `ai-rate-limiting` quota is spent.
    public var rateLimiting = false
    /// Move a context-length 400 to the next instance (a model with a larger window).
    public var contextLength = false

    public init(_ value: JSONValue?) {
        switch value {
        case .string(let s)?:
            http429 = s == "http_429"
            http5xx = s == "http_5xx"
            rateLimiting = s == "instance_health_and_rate_limiting"
        case .array(let items)?:
            let names = Set(items.compactMap(\.stringValue))
            http429 = names.contains("http_429")
            http5xx = names.contains("http_5xx")
            rateLimiting = names.contains("rate_limiting")
            contextLength = names.contains("context_length")
        default:
            break
        }
    }
}

/// A validated `ai-proxy-multi` / `ai-proxy` configuration in typed form.
public struct AIProxySettings: Sendable {
    public enum Algorithm: String, Sendable { case roundrobin, chash, semantic }

    public var instances: [AIInstance]
    public var algorithm: Algorithm
    public var hashOn: String
    public var hashKey: String?
    public var fallback: FallbackStrategy
    public var fallbackStatuses: Set<Int>
    public var maxRetries: Int?
    public var retryOnFailureWithinMs: Int?
    public var timeoutMs: Int
    public var maxRequestBodySize: Int
    public var maxStreamDurationMs: Int?
    public var maxResponseBytes: Int?
    public var keepalive: Bool
    public var sslVerify: Bool
    public var logSummaries: Bool
    public var logPayloads: Bool
    /// `ai-proxy` is a single instance that never retries.
    public var isSingle: Bool
    public var resilience: ResilienceSettings
    /// `semantic_opts`, with the `semantic` balancer.
    public var semantic: SemanticOptions?

    /// From a validated `ai-proxy-multi` config.
    public init(multi json: JSONValue) {
        self.init(common: json, instances: (json["instances"]?.arrayValue ?? []).map { AIInstance(json: $0) })
        algorithm = Algorithm(rawValue: json["balancer"]?["algorithm"]?.stringValue ?? "roundrobin") ?? .roundrobin
        hashOn = json["balancer"]?["hash_on"]?.stringValue ?? "vars"
        hashKey = json["balancer"]?["key"]?.stringValue
        fallback = FallbackStrategy(json["fallback_strategy"])
        fallbackStatuses = Set((json["fallback_http_statuses"]?.arrayValue ?? []).compactMap(\.intValue))
        maxRetries = json["max_retries"]?.intValue
        retryOnFailureWithinMs = json["retry_on_failure_within_ms"]?.intValue
        resilience = ResilienceSettings(json, timeoutMs: timeoutMs)
        if algorithm == .semantic { semantic = json["semantic_opts"].map(SemanticOptions.init) }
    }

    /// From a validated `ai-proxy` config: one instance named `ai-proxy-<provider>`.
    public init(single json: JSONValue) {
        let provider = json["provider"]?.stringValue ?? ""
        var instance = AIInstance(json: json, name: "ai-proxy-\(provider)")
        instance.weight = 1
        self.init(common: json, instances: [instance])
        isSingle = true
    }

    private init(common json: JSONValue, instances: [AIInstance]) {
        self.instances = instances
        algorithm = .roundrobin
        hashOn = "vars"
        hashKey = nil
        fallback = FallbackStrategy(nil)
        fallbackStatuses = []
        maxRetries = nil
        retryOnFailureWithinMs = nil
        timeoutMs = json["timeout"]?.intValue ?? 30000
        maxRequestBodySize = json["max_req_body_size"]?.intValue ?? 67_108_864
        maxStreamDurationMs = json["max_stream_duration_ms"]?.intValue
        maxResponseBytes = json["max_response_bytes"]?.intValue
        keepalive = json["keepalive"]?.boolValue ?? true
        sslVerify = json["ssl_verify"]?.boolValue ?? true
        logSummaries = json["logging"]?["summaries"]?.boolValue ?? false
        logPayloads = json["logging"]?["payloads"]?.boolValue ?? false
        isSingle = false
        resilience = ResilienceSettings(JSONValue.object([:]), timeoutMs: timeoutMs)
        semantic = nil
    }
}

/// The resilience fields of `ai-proxy-multi` in typed form, with their defaults. With none set
/// the behaviour is APISIX's: the header and idle timeouts default to `timeout` (APISIX's
/// read timeout), nothing is retried in place, there is no breaker and no continuation.
public struct ResilienceSettings: Sendable {
    public var retry: RetryPolicy
    public var responseHeaderTimeoutMs: Int
    /// From the request's start to the first content-bearing chunk; `timeout` when unset.
    public var firstTokenTimeoutMs: Int
    public var streamIdleTimeoutMs: Int
    /// Every attempt, wait and fallback of a request fits in this (default 120 s, or
    /// `timeout` when that is longer).
    public var requestTimeoutMs: Int
    public var streamContinuation: Bool
    public var breaker: BreakerPolicy?

    public init(_ json: JSONValue, timeoutMs: Int) {
        retry = RetryPolicy(json["retry"])
        responseHeaderTimeoutMs = json["response_header_timeout_ms"]?.intValue ?? timeoutMs
        firstTokenTimeoutMs = json["first_token_timeout_ms"]?.intValue ?? timeoutMs
        streamIdleTimeoutMs = json["stream_idle_timeout_ms"]?.intValue ?? timeoutMs
        requestTimeoutMs = json["request_timeout_ms"]?.intValue ?? max(120_000, timeoutMs)
        streamContinuation = json["stream_continuation"]?.boolValue ?? false
        breaker = json["breaker"].map(BreakerPolicy.init)
    }
}

/// The `ai-proxy-multi` and `ai-proxy` schemas (APISIX 3.18 `ai-proxy/schema.lua`), and the
/// checks APISIX does in code (unique names, endpoint shape, chash keys) with its messages.
public enum AIProxySchemas {
    public static let providerNames = [
        "openai", "deepseek", "aimlapi", "anthropic", "openai-compatible", "azure-openai", "openrouter", "gemini",
        "vertex-ai", "bedrock",
    ]

    static let stringMap = Schema(
        type: .object, patternProperties: [("^[a-zA-Z0-9._-]+$", Schema(type: .string))])

    static let auth = Schema(
        type: .object,
        additionalProperties: .forbidden,
        patternProperties: [
            ("header", stringMap), ("query", stringMap), ("gcp", GCPAuth.schema), ("aws", AWSAuth.schema),
        ])

    static let override = Schema(
        type: .object,
        properties: [
            "endpoint": Schema(type: .string, minLength: 1),
            "llm_options": Schema(
                type: .object, properties: ["max_tokens": Schema(type: .integer, minimum: 1)],
                additionalProperties: .forbidden),
            "request_body": Schema(
                type: .object,
                properties: [
                    "anthropic-messages": Schema(type: .object), "bedrock-converse": Schema(type: .object),
                    "openai-chat": Schema(type: .object), "openai-embeddings": Schema(type: .object),
                    "openai-responses": Schema(type: .object), "passthrough": Schema(type: .object),
                ],
                additionalProperties: .forbidden),
            "request_body_force_override": Schema(type: .boolean, default: false),
        ])

    static let options = Schema(type: .object, properties: ["model": Schema(type: .string)])

    static let providerConf = Schema(
        type: .object,
        properties: ["project_id": Schema(type: .string), "region": Schema(type: .string, minLength: 1)])

    static let checks = HealthCheckConfig.schema

    static let common: [(String, Schema)] = [
        ("timeout", Schema(type: .integer, minimum: 1, maximum: 600_000, default: 30000)),
        ("max_req_body_size", Schema(type: .integer, minimum: 1, default: 67_108_864)),
        ("max_stream_duration_ms", Schema(type: .integer, minimum: 1)),
        ("max_response_bytes", Schema(type: .integer, minimum: 1)),
        ("keepalive", Schema(type: .boolean, default: true)),
        ("keepalive_timeout", Schema(type: .integer, minimum: 1000, default: 60000)),
        ("keepalive_pool", Schema(type: .integer, minimum: 1, default: 30)),
        ("streaming_flush_interval_ms", Schema(type: .integer, minimum: 0, default: 10)),
        ("ssl_verify", Schema(type: .boolean, default: true)),
        (
            "logging",
            Schema(
                type: .object,
                properties: [
                    "summaries": Schema(type: .boolean, default: false),
                    "payloads": Schema(type: .boolean, default: false),
                ])
        ),
    ]

    /// Switchboard's resilience fields (issue 8). None has a top-level default, so a
    /// configuration without them is stored exactly as APISIX stores it.
    static let resilience: [(String, Schema)] = [
        (
            "retry",
            Schema(
                type: .object,
                properties: [
                    "per_instance": Schema(type: .integer, minimum: 0, maximum: 10, default: 0),
                    "backoff_ms": Schema(type: .integer, minimum: 0, maximum: 60000, default: 500),
                    "max_backoff_ms": Schema(type: .integer, minimum: 0, maximum: 300_000, default: 5000),
                    "jitter": Schema(type: .boolean, default: true),
                    "honor_retry_after": Schema(type: .boolean, default: true),
                    "max_retry_after_ms": Schema(type: .integer, minimum: 0, maximum: 600_000, default: 30000),
                ], additionalProperties: .forbidden)
        ),
        ("response_header_timeout_ms", Schema(type: .integer, minimum: 1, maximum: 600_000)),
        ("first_token_timeout_ms", Schema(type: .integer, minimum: 1, maximum: 600_000)),
        ("stream_idle_timeout_ms", Schema(type: .integer, minimum: 1, maximum: 600_000)),
        ("request_timeout_ms", Schema(type: .integer, minimum: 1, maximum: 3_600_000)),
        ("stream_continuation", Schema(type: .boolean)),
        (
            "breaker",
            Schema(
                type: .object,
                properties: [
                    "failures": Schema(type: .integer, minimum: 1, maximum: 1000, default: 3),
                    "open_ms": Schema(type: .integer, minimum: 1, maximum: 3_600_000, default: 10000),
                ], additionalProperties: .forbidden)
        ),
    ]

    static let instance = Schema(
        type: .object,
        properties: [
            "name": Schema(type: .string, minLength: 1, maxLength: 100),
            "provider": Schema(type: .string, enum: providerNames.map { .string($0) }),
            "priority": Schema(type: .integer, default: 0),
            "weight": Schema(type: .integer, minimum: 0),
            "auth": auth,
            "options": options,
            "override": override,
            "provider_conf": providerConf,
            "checks": checks,
            "supports_assistant_prefill": Schema(type: .boolean),
            "examples": Schema(type: .array, items: Schema(type: .string, minLength: 1), minItems: 1, maxItems: 64),
            "threshold": Schema(type: .number, minimum: -1, maximum: 1),
        ],
        required: ["name", "provider", "weight", "auth"])

    /// `semantic_opts`: the embeddings provider of the `semantic` balancer and its decision.
    static let semanticOptions = Schema(
        type: .object,
        properties: [
            "embeddings": Schema(
                type: .object,
                properties: [
                    "provider": Schema(type: .string, enum: ["openai", "azure-openai"]),
                    "model": Schema(type: .string, minLength: 1),
                    "endpoint": Schema(type: .string, minLength: 1),
                    "auth": Schema(
                        type: .object, properties: ["header": stringMap, "query": stringMap],
                        additionalProperties: .forbidden),
                    "timeout": Schema(type: .integer, minimum: 1, maximum: 600_000, default: 3000),
                    "ssl_verify": Schema(type: .boolean, default: true),
                ], required: ["provider", "model", "auth"]),
            "threshold": Schema(type: .number, minimum: -1, maximum: 1, default: 0),
            "fallback": Schema(type: .string, minLength: 1),
            "debugging": Schema(type: .boolean, default: false),
        ], required: ["embeddings"])

    public static let multi: Schema = {
        var properties: [(String, Schema)] = [
            ("instances", Schema(type: .array, items: instance, minItems: 1)),
            (
                "balancer",
                Schema(
                    type: .object,
                    properties: [
                        "algorithm": Schema(
                            type: .string, enum: ["chash", "roundrobin", "semantic"], default: "roundrobin"),
                        "hash_on": Schema(
                            type: .string, enum: ["vars", "header", "cookie", "consumer", "vars_combinations"],
                            default: "vars"),
                        "key": Schema(type: .string),
                    ], default: ["algorithm": "roundrobin"])
            ),
            (
                "fallback_strategy",
                Schema(anyOf: [
                    Schema(type: .string, enum: ["instance_health_and_rate_limiting", "http_429", "http_5xx"]),
                    Schema(
                        type: .array,
                        items: Schema(
                            type: .string, enum: ["rate_limiting", "http_429", "http_5xx", "context_length"])),
                ])
            ),
            (
                "fallback_http_statuses",
                Schema(
                    type: .array, items: Schema(type: .integer, minimum: 400, maximum: 599), minItems: 1,
                    uniqueItems: true)
            ),
            ("max_retries", Schema(type: .integer, minimum: 0)),
            ("retry_on_failure_within_ms", Schema(type: .integer, minimum: 1)),
            ("semantic_opts", semanticOptions),
        ]
        properties += resilience
        properties += common
        return Schema(type: .object, propertyList: properties, required: ["instances"])
    }()

    public static let single: Schema = {
        var properties: [(String, Schema)] = [
            ("provider", Schema(type: .string, enum: providerNames.map { .string($0) })),
            ("provider_conf", providerConf),
            ("auth", auth),
            ("options", options),
            ("override", override),
        ]
        properties += common
        return Schema(type: .object, propertyList: properties, required: ["provider", "auth"])
    }()

    /// APISIX's `check_schema` for ai-proxy-multi beyond the JSON schema.
    public static func checkMulti(_ config: JSONValue) throws(SchemaError) -> JSONValue {
        let instances = config["instances"]?.arrayValue ?? []
        var seen: [String: Int] = [:]
        for (i, instance) in instances.enumerated() {
            let name = instance["name"]?.stringValue ?? ""
            if let first = seen[name] {
                throw SchemaError(
                    "duplicate instance name '\(name)' at instances[\(first + 1)] and instances[\(i + 1)]")
            }
            seen[name] = i
            try checkEndpoint(instance)
            try checkProvider(instance, name: name)
        }
        if config["balancer"]?["algorithm"]?.stringValue == "semantic" {
            guard let options = config["semantic_opts"] else {
                throw SchemaError("semantic_opts is required when balancer algorithm is semantic")
            }
            for instance in instances where (instance["examples"]?.arrayValue ?? []).isEmpty {
                throw SchemaError(
                    "instance '\(instance["name"]?.stringValue ?? "")': examples are required when balancer algorithm is semantic"
                )
            }
            if let fallback = options["fallback"]?.stringValue, seen[fallback] == nil {
                throw SchemaError("semantic_opts.fallback '\(fallback)' is not the name of an instance")
            }
            if let endpoint = options["embeddings"]?["endpoint"]?.stringValue, AIEndpoint(endpoint) == nil {
                throw SchemaError("semantic_opts.embeddings: invalid endpoint")
            }
        }
        if let balancer = config["balancer"], balancer["algorithm"]?.stringValue == "chash" {
            guard let hashOn = balancer["hash_on"]?.stringValue else {
                throw SchemaError("must configure `hash_on` when balancer algorithm is chash")
            }
            if hashOn != "consumer" {
                guard let key = balancer["key"]?.stringValue else {
                    throw SchemaError("must configure `hash_key` when balancer `hash_on` is not set to cookie")
                }
                let pattern: String?
                switch hashOn {
                case "vars":
                    pattern =
                        "^((uri|server_name|server_addr|request_uri|remote_port|remote_addr|query_string|host|hostname|mqtt_client_id)|arg_[0-9a-zA-z_-]+)$"
                case "header", "cookie": pattern = "^[a-zA-Z0-9-_]+$"
                default: pattern = nil
                }
                if let pattern, !SchemaPattern(pattern).matches(key) {
                    throw SchemaError("invalid configuration: failed to match pattern \"\(pattern)\" with \"\(key)\"")
                }
            }
        }
        return config
    }

    public static func checkSingle(_ config: JSONValue) throws(SchemaError) -> JSONValue {
        try checkEndpoint(config)
        try checkProvider(config, name: "ai-proxy-\(config["provider"]?.stringValue ?? "")")
        return config
    }

    /// What a provider needs beyond the schema (APISIX's `validate_provider_requirements`), and
    /// a service account key that can be read.
    static func checkProvider(_ instance: JSONValue, name: String) throws(SchemaError) {
        if instance["provider"]?.stringValue == "vertex-ai" {
            let conf = instance["provider_conf"]
            let located = conf?["project_id"]?.stringValue != nil && conf?["region"]?.stringValue != nil
            if !located, instance["override"]?["endpoint"] == nil {
                throw SchemaError(
                    "instance '\(name)': vertex-ai requires either provider_conf (project_id + region) or override.endpoint"
                )
            }
        }
        if instance["provider"]?.stringValue == "bedrock" {
            if instance["provider_conf"]?["region"]?.stringValue == nil {
                throw SchemaError("instance '\(name)': bedrock requires provider_conf.region")
            }
            if instance["auth"]?["aws"] == nil { throw SchemaError("instance '\(name)': bedrock requires auth.aws") }
        }
        if let key = instance["auth"]?["gcp"]?["service_account_json"]?.stringValue {
            do {
                _ = try GCPServiceAccount(json: key)
            } catch {
                throw SchemaError("invalid gcp service_account_json: \(error.message)")
            }
        }
    }

    static func checkEndpoint(_ instance: JSONValue) throws(SchemaError) {
        if let endpoint = instance["override"]?["endpoint"]?.stringValue, AIEndpoint(endpoint) == nil {
            throw SchemaError("invalid endpoint")
        }
    }
}

extension AIProxySchemas {
    /// The secrets of one provider's `auth` (relative to the `auth` object's parent).
    static let authSecrets: [[String]] = [
        ["auth", "header", "*"], ["auth", "query", "*"], ["auth", "aws", "secret_access_key"],
        ["auth", "aws", "session_token"], ["auth", "gcp", "service_account_json"],
    ]

    /// `ai-proxy`'s secret fields.
    public static let singleSecrets: [[String]] = authSecrets

    /// `ai-proxy-multi`'s secret fields: every instance's, and the semantic embedder's.
    public static let multiSecrets: [[String]] =
        authSecrets.map { ["instances", "*"] + $0 }
        + [
            ["semantic_opts", "embeddings", "auth", "header", "*"],
            ["semantic_opts", "embeddings", "auth", "query", "*"],
        ]
}

/// The `ai-rate-limiting` schema (APISIX 3.18, `policy: local`) and its code checks.
public enum RateLimitSchemas {
    static let countOrExpression = Schema(anyOf: [
        Schema(type: .integer, exclusiveMinimum: 0), Schema(type: .string, minLength: 1),
    ])
    static let positiveOrExpression = Schema(anyOf: [
        Schema(type: .integer, minimum: 1), Schema(type: .string, minLength: 1),
    ])

    public static let plugin = Schema(
        type: .object,
        properties: [
            "limit": countOrExpression,
            "time_window": countOrExpression,
            "instances": Schema(
                type: .array,
                items: Schema(
                    type: .object,
                    properties: [
                        "name": Schema(type: .string),
                        "limit": positiveOrExpression,
                        "time_window": positiveOrExpression,
                    ],
                    required: ["name", "limit", "time_window"]),
                minItems: 1),
            "limit_strategy": Schema(
                type: .string, enum: ["total_tokens", "prompt_tokens", "completion_tokens", "expression"],
                default: "total_tokens"),
            "cost_expr": Schema(type: .string, minLength: 1),
            "show_limit_quota_header": Schema(type: .boolean, default: true),
            "rejected_code": Schema(type: .integer, minimum: 200, maximum: 599, default: 503),
            "rejected_msg": Schema(type: .string, minLength: 1),
            "policy": Schema(
                type: .string, enum: ["local", "redis", "redis-cluster", "redis-sentinel"], default: "local"),
            "allow_degradation": Schema(type: .boolean, default: false),
            "rules": Schema(
                type: .array,
                items: Schema(
                    type: .object,
                    properties: [
                        "count": countOrExpression,
                        "time_window": countOrExpression,
                        "key": Schema(type: .string),
                        "header_prefix": Schema(type: .string),
                    ],
                    required: ["count", "time_window", "key"])),
        ],
        dependencies: [("limit", ["time_window"]), ("time_window", ["limit"])],
        oneOf: [
            Schema(anyOf: [Schema(required: ["limit", "time_window"]), Schema(required: ["instances"])]),
            Schema(required: ["rules"]),
        ])

    public static func check(_ config: JSONValue) throws(SchemaError) -> JSONValue {
        if config["limit_strategy"]?.stringValue == "expression" {
            guard let text = config["cost_expr"]?.stringValue else {
                throw SchemaError("cost_expr is required when limit_strategy is 'expression'")
            }
            do { _ = try CostExpression(text) } catch { throw SchemaError("invalid cost_expr: \(error)") }
        }
        if let policy = config["policy"]?.stringValue, policy != "local" {
            throw SchemaError(
                "policy \(policy) is not supported by this build: counters are local to the gateway (shared counters come with cluster mode)"
            )
        }
        return config
    }
}

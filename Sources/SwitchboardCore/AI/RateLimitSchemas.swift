/// The `ai-rate-limiting` schema (APISIX 3.18) and its code checks. Policies: `local` (this
/// node's counters) and `cluster` (counters shared by the nodes of a PostgreSQL cluster) in
/// place of APISIX's `redis*`.
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
                type: .string, enum: ["local", "cluster", "redis", "redis-cluster", "redis-sentinel"],
                default: "local"),
            "sync_interval": Schema(type: .integer, minimum: 10, maximum: 60000),
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

    /// Where this gateway keeps its configuration, for `policy: cluster`.
    public struct Store: Sendable, Equatable {
        /// As logs show it (no password).
        public var location: String
        /// Whether its nodes share counters through it (PostgreSQL).
        public var sharesCounters: Bool

        public init(location: String, sharesCounters: Bool) {
            self.location = location
            self.sharesCounters = sharesCounters
        }

        public static let unknown = Store(location: "not a cluster store", sharesCounters: false)
    }

    public static func check(_ config: JSONValue, store: Store = .unknown) throws(SchemaError) -> JSONValue {
        try checkAmounts(config)
        if config["limit_strategy"]?.stringValue == "expression" {
            guard let text = config["cost_expr"]?.stringValue else {
                throw SchemaError("cost_expr is required when limit_strategy is 'expression'")
            }
            do { _ = try CostExpression(text) } catch { throw SchemaError("invalid cost_expr: \(error)") }
        }
        let policy = config["policy"]?.stringValue ?? "local"
        switch policy {
        case "local":
            if config["sync_interval"] != nil { throw SchemaError("sync_interval applies to policy cluster only") }
        case "cluster":
            guard store.sharesCounters else {
                throw SchemaError(
                    "policy cluster needs the cluster store (store: postgres://...); this gateway's store is \(store.location)"
                )
            }
        default:
            throw SchemaError(
                "policy \(policy) is not supported: nodes share counters through the cluster store; use policy \"cluster\" with store: postgres://..."
            )
        }
        return config
    }

    /// Every `limit`, `count` and `time_window` must be a positive integer or a variable
    /// expression: the schema's `string` branch alone would let `"ten"` through, and a quota
    /// that cannot be read must be refused here rather than fail open or closed later.
    static func checkAmounts(_ config: JSONValue) throws(SchemaError) {
        func check(_ value: JSONValue?, _ path: String) throws(SchemaError) {
            guard let value else { return }
            if case .failure(let error) = QuotaAmount.parse(value) {
                throw SchemaError("property \"\(path)\" validation failed: \(error.description)")
            }
        }
        try check(config["limit"], "limit")
        try check(config["time_window"], "time_window")
        for (i, item) in (config["instances"]?.arrayValue ?? []).enumerated() {
            try check(item["limit"], "instances[\(i + 1)].limit")
            try check(item["time_window"], "instances[\(i + 1)].time_window")
        }
        for (i, rule) in (config["rules"]?.arrayValue ?? []).enumerated() {
            try check(rule["count"], "rules[\(i + 1)].count")
            try check(rule["time_window"], "rules[\(i + 1)].time_window")
        }
    }
}

/// The APISIX resource schemas (`apisix/schema_def.lua`), limited to the fields a gateway in
/// front of LLMs uses. Routes, services, consumers and credentials forbid unknown fields, as
/// APISIX does, so a typo is an error rather than silently ignored configuration.
public enum ResourceSchemas {
    public static let idSchema = Schema(anyOf: [
        Schema(type: .string, minLength: 1, maxLength: 64, pattern: "^[a-zA-Z0-9-_.]+$"),
        Schema(type: .integer, minimum: 1),
    ])

    static let labels = Schema(
        type: .object,
        patternProperties: [
            (".*", Schema(type: .string, minLength: 1, maxLength: 256, pattern: "^\\S+$"))
        ])
    static let hostPattern = "^\\*?[0-9a-zA-Z-._\\[\\]:]+$"
    static let host = Schema(type: .string, pattern: hostPattern)
    static let methods = Schema(
        type: .array,
        items: Schema(
            type: .string,
            enum: ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PURGE"]),
        uniqueItems: true)
    static let remoteAddr = Schema(type: .string, minLength: 1)
    static let timeout = Schema(
        type: .object,
        properties: [
            "connect": Schema(type: .number, exclusiveMinimum: 0),
            "send": Schema(type: .number, exclusiveMinimum: 0),
            "read": Schema(type: .number, exclusiveMinimum: 0),
        ],
        required: ["connect", "send", "read"])

    public static let upstream = Schema(
        type: .object,
        properties: [
            "id": idSchema,
            "name": Schema(type: .string, minLength: 1, maxLength: 256),
            "desc": Schema(type: .string, maxLength: 256),
            "labels": labels,
            "nodes": Schema(anyOf: [
                Schema(
                    type: .object,
                    patternProperties: [(".*", Schema(type: .integer, minimum: 0))]),
                Schema(
                    type: .array,
                    items: Schema(
                        type: .object,
                        properties: [
                            "host": host,
                            "port": Schema(type: .integer, minimum: 1, maximum: 65535),
                            "weight": Schema(type: .integer, minimum: 0),
                            "priority": Schema(type: .integer, default: 0),
                        ],
                        required: ["host", "weight"])),
            ]),
            "type": Schema(type: .string, enum: ["roundrobin", "chash", "ewma", "least_conn"], default: "roundrobin"),
            "scheme": Schema(type: .string, enum: ["http", "https"], default: "http"),
            "hash_on": Schema(type: .string, enum: ["vars", "header", "cookie", "consumer", "vars_combinations"]),
            "key": Schema(type: .string),
            "timeout": timeout,
            "retries": Schema(type: .integer, minimum: 0),
            "retry_timeout": Schema(type: .number, minimum: 0),
            "pass_host": Schema(type: .string, enum: ["pass", "node", "rewrite"], default: "pass"),
            "upstream_host": host,
            "keepalive_pool": Schema(type: .object),
            "checks": Schema(type: .object),
            "tls": Schema(type: .object),
            "service_name": Schema(type: .string, minLength: 1, maxLength: 256),
            "discovery_type": Schema(type: .string),
            "create_time": Schema(type: .integer),
            "update_time": Schema(type: .integer),
        ],
        additionalProperties: .forbidden,
        anyOf: [Schema(required: ["nodes"]), Schema(required: ["service_name", "discovery_type"])])

    static func routeRequired() -> [Schema] {
        var list: [Schema] = []
        for uri in ["uri", "uris"] {
            for other in ["plugins", "upstream", "upstream_id", "service_id"] {
                list.append(Schema(required: [other, uri]))
            }
        }
        list.append(Schema(required: ["script", "uri"]))
        list.append(Schema(required: ["script", "uris"]))
        return list
    }

    public static let route = Schema(
        type: .object,
        properties: [
            "id": idSchema,
            "uri": Schema(type: .string, minLength: 1, maxLength: 4096),
            "uris": Schema(type: .array, items: Schema(type: .string), minItems: 1, uniqueItems: true),
            "name": Schema(type: .string, minLength: 1, maxLength: 256),
            "desc": Schema(type: .string, maxLength: 256),
            "labels": labels,
            "priority": Schema(type: .integer, default: 0),
            "methods": methods,
            "host": host,
            "hosts": Schema(type: .array, items: host, minItems: 1, uniqueItems: true),
            "remote_addr": remoteAddr,
            "remote_addrs": Schema(type: .array, items: remoteAddr, minItems: 1, uniqueItems: true),
            "vars": Schema(type: .array),
            "filter_func": Schema(type: .string, minLength: 10, pattern: "^function"),
            "script": Schema(type: .string, minLength: 10, maxLength: 102400),
            "plugins": Schema(type: .object),
            "upstream": upstream,
            "upstream_id": idSchema,
            "service_id": idSchema,
            "plugin_config_id": idSchema,
            "timeout": timeout,
            "enable_websocket": Schema(type: .boolean),
            "status": Schema(type: .integer, enum: [1, 0], default: 1),
            "create_time": Schema(type: .integer),
            "update_time": Schema(type: .integer),
        ],
        additionalProperties: .forbidden,
        anyOf: routeRequired(),
        not: Schema(anyOf: [
            Schema(required: ["host", "hosts"]),
            Schema(required: ["remote_addr", "remote_addrs"]),
            Schema(required: ["uri", "uris"]),
        ]))

    public static let service = Schema(
        type: .object,
        properties: [
            "id": idSchema,
            "name": Schema(type: .string, minLength: 1, maxLength: 256),
            "desc": Schema(type: .string, maxLength: 256),
            "labels": labels,
            "plugins": Schema(type: .object),
            "upstream": upstream,
            "upstream_id": idSchema,
            "script": Schema(type: .string, minLength: 10, maxLength: 102400),
            "enable_websocket": Schema(type: .boolean),
            "hosts": Schema(type: .array, items: host, minItems: 1, uniqueItems: true),
            "create_time": Schema(type: .integer),
            "update_time": Schema(type: .integer),
        ],
        additionalProperties: .forbidden)

    public static let consumer = Schema(
        type: .object,
        properties: [
            "username": Schema(type: .string, minLength: 1, maxLength: 256, pattern: "^[a-zA-Z0-9_\\-]+$"),
            "desc": Schema(type: .string, maxLength: 256),
            "labels": labels,
            "group_id": idSchema,
            "plugins": Schema(type: .object),
            "create_time": Schema(type: .integer),
            "update_time": Schema(type: .integer),
        ],
        required: ["username"],
        additionalProperties: .forbidden)

    public static let credential = Schema(
        type: .object,
        properties: [
            "id": idSchema,
            "name": Schema(type: .string, minLength: 1, maxLength: 256),
            "desc": Schema(type: .string, maxLength: 256),
            "labels": labels,
            "plugins": Schema(type: .object, maxProperties: 1),
            "create_time": Schema(type: .integer),
            "update_time": Schema(type: .integer),
        ],
        additionalProperties: .forbidden)

    /// `consumer_groups`, `plugin_configs` and `global_rules`: named sets of plugins.
    static func pluginSet(name: Bool) -> Schema {
        var properties: [(String, Schema)] = [
            ("id", idSchema),
            ("plugins", Schema(type: .object)),
            ("create_time", Schema(type: .integer)),
            ("update_time", Schema(type: .integer)),
        ]
        if name {
            properties.append(("name", Schema(type: .string, minLength: 1, maxLength: 256)))
            properties.append(("desc", Schema(type: .string, maxLength: 256)))
            properties.append(("labels", labels))
        }
        return Schema(
            type: .object, propertyList: properties, required: ["plugins"], additionalProperties: .forbidden)
    }

    public static let consumerGroup = pluginSet(name: true)
    public static let pluginConfig = pluginSet(name: true)
    public static let globalRule = pluginSet(name: false)

    static let pem = Schema(type: .string, minLength: 128, maxLength: 64 * 1024)

    /// `ssls`: a certificate and key for the proxy's TLS listeners, picked by SNI.
    public static let ssl = Schema(
        type: .object,
        properties: [
            "id": idSchema,
            "desc": Schema(type: .string, maxLength: 256),
            "labels": labels,
            "type": Schema(type: .string, enum: ["server", "client"], default: "server"),
            "cert": pem,
            "key": pem,
            "sni": host,
            "snis": Schema(type: .array, items: host, minItems: 1),
            "client": Schema(
                type: .object,
                properties: [
                    "ca": pem,
                    "depth": Schema(type: .integer, minimum: 0, default: 1),
                    "skip_mtls_uri_regex": Schema(
                        type: .array, items: Schema(type: .string), minItems: 1, uniqueItems: true),
                ],
                required: ["ca"],
                additionalProperties: .forbidden),
            "status": Schema(type: .integer, enum: [1, 0], default: 1),
            "ssl_protocols": Schema(
                type: .array, items: Schema(type: .string, enum: ["TLSv1.2", "TLSv1.3"]), uniqueItems: true),
            "create_time": Schema(type: .integer),
            "update_time": Schema(type: .integer),
        ],
        required: ["cert", "key"],
        additionalProperties: .forbidden)

    /// `secrets/vault/<id>`: a HashiCorp Vault KV engine that `$secret://vault/<id>/...`
    /// references read from.
    public static let vaultSecret = Schema(
        type: .object,
        properties: [
            "id": Schema(type: .string),
            "uri": Schema(type: .string, minLength: 1, pattern: "^https?://"),
            "prefix": Schema(type: .string, minLength: 1),
            "token": Schema(type: .string, minLength: 1),
            "namespace": Schema(type: .string),
            "timeout": Schema(type: .number, maximum: 60, exclusiveMinimum: 0),
            "create_time": Schema(type: .integer),
            "update_time": Schema(type: .integer),
        ],
        required: ["uri", "prefix", "token"],
        additionalProperties: .forbidden)
}

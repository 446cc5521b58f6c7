#!/usr/bin/env python3
"""Generates the Admin API's OpenAPI 3.1 document from schemas that mirror the Swift ones
(ResourceSchemas, AIProxySchemas, RateLimitSchemas, the plugins' PluginSpecs), and writes it
twice: docs/admin-api.openapi.json (the checked-in document, for readers and tools) and
Sources/SwitchboardServer/Admin/AdminOpenAPI.swift (the same document compiled into the binary,
served at GET /apisix/admin/openapi.json). Run it after changing a resource schema:

    python3 scripts/admin_openapi.py

The test suite checks that the two agree and runs schemathesis against a live gateway with the
served document (Tests/Clients/admin_schemathesis.py), so a document that no longer matches the
gateway fails there.

Each canonical schema below is written once, as the Swift code declares it (timestamps
included). Two variants of every component are emitted:
  * the request variant (`Route`): what a client may send. `create_time`/`update_time` are
    left out (the Admin API refuses them at the top level and nothing uses them nested).
  * the stored variant (`RouteStored`): what the Admin API answers. Looser where the gateway's
    validator and JSON Schema differ without any change in meaning (string lengths counted in
    bytes, ICU vs ECMA regular expressions, `uniqueItems` with 1 vs 1.0) and where APISIX's Lua
    heritage shows: an empty JSON array is accepted (and stored) for an object and an empty
    object for an array.
"""
import copy
import json
import sys

REF = "#/components/schemas/"
SCHEMAS = {}  # name -> canonical schema
ORDER = []


def comp(name, schema):
    SCHEMAS[name] = schema
    ORDER.append(name)
    return {"$ref": REF + name}


def ref(name):
    return {"$ref": REF + name}


def S(type=None, **kw):
    s = {}
    if type is not None:
        s["type"] = type
    # Python-friendly names for JSON Schema keywords.
    rename = {
        "additional": "additionalProperties",
        "enum_": "enum",
        "not_": "not",
        "default_": "default",
        "pattern_props": "patternProperties",
        "min_length": "minLength",
        "max_length": "maxLength",
        "min_items": "minItems",
        "max_items": "maxItems",
        "unique": "uniqueItems",
        "min_props": "maxProperties",
        "max_props": "maxProperties",
        "excl_min": "exclusiveMinimum",
        "excl_max": "exclusiveMaximum",
        "desc": "description",
        "any_of": "anyOf",
        "one_of": "oneOf",
        "dependent_required": "dependentRequired",
    }
    for k, v in kw.items():
        s[rename.get(k, k)] = v
    return s


def obj(props=None, required=None, additional=None, **kw):
    s = {"type": "object"}
    if "desc" in kw:
        s["description"] = kw.pop("desc")
    if props is not None:
        s["properties"] = props
    if required:
        s["required"] = required
    if additional is not None:
        s["additionalProperties"] = additional
    s.update(S(**kw))
    return s


def string(**kw):
    return S("string", **kw)


def integer(**kw):
    return S("integer", **kw)


def number(**kw):
    return S("number", **kw)


def boolean(**kw):
    return S("boolean", **kw)


def array(items=None, **kw):
    s = {"type": "array"}
    if "desc" in kw:
        s["description"] = kw.pop("desc")
    if items is not None:
        s["items"] = items
    s.update(S(**kw))
    return s


TIMESTAMPS = {
    "create_time": integer(description="Unix time of creation, set by the gateway (refused in a write)."),
    "update_time": integer(description="Unix time of the last write, set by the gateway (refused in a write)."),
}

HTTP_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PURGE"]
PROVIDERS = [
    "openai", "deepseek", "aimlapi", "anthropic", "openai-compatible", "azure-openai", "openrouter", "gemini",
    "vertex-ai", "bedrock",
]
PLUGINS = ["ai-proxy", "ai-proxy-multi", "ai-rate-limiting", "key-auth", "mocking"]

# ---------------------------------------------------------------------------------------------
# Shared pieces (ResourceSchemas)

ID = comp("Id", {
    "description": "An object id: a string of 1-64 characters from `[a-zA-Z0-9-_.]`, or a positive integer "
                   "(the same object as its decimal string). Stored and answered as a string.",
    "anyOf": [
        string(minLength=1, maxLength=64, pattern="^[a-zA-Z0-9_.-]+$"),
        integer(minimum=1),
    ],
})
LABELS = comp("Labels", obj(
    desc="Key-value labels; each value a string of 1-256 bytes without whitespace.",
    pattern_props={".*": string(minLength=1, maxLength=256, pattern="^\\S+$")},
))
HOST_PATTERN = "^\\*?[0-9a-zA-Z._\\[\\]:-]+$"
HOST = string(pattern=HOST_PATTERN)
METHODS = array(string(enum=HTTP_METHODS), uniqueItems=True)
REMOTE_ADDR = string(minLength=1, description="An IP address or CIDR.")
TIMEOUT = comp("Timeout", obj(
    {
        "connect": number(exclusiveMinimum=0),
        "send": number(exclusiveMinimum=0),
        "read": number(exclusiveMinimum=0),
    },
    required=["connect", "send", "read"],
    desc="Upstream timeouts in seconds.",
))

UPSTREAM_PROPS = {
    "id": ID,
    "name": string(minLength=1, maxLength=256),
    "desc": string(maxLength=256),
    "labels": LABELS,
    "nodes": {
        "description": "`{\"host:port\": weight}`, or a list of `{host, port, weight, priority}`.",
        "anyOf": [
            obj(pattern_props={".*": integer(minimum=0)},
                propertyNames={"pattern": "^(\\[[^\\]]*\\]|[^:\\[][^:]*)(:\\+?[0-9]{1,5})?$",
                               "description": "`host`, `host:port` or `[v6]:port`; port 1-65535."}),
            array(obj(
                {
                    "host": HOST,
                    "port": integer(minimum=1, maximum=65535),
                    "weight": integer(minimum=0),
                    "priority": integer(default=0),
                },
                required=["host", "weight"],
            )),
        ],
    },
    "type": string(enum=["roundrobin", "chash", "ewma", "least_conn"], default="roundrobin"),
    "scheme": string(enum=["http", "https"], default="http"),
    "hash_on": string(enum=["vars", "header", "cookie", "consumer", "vars_combinations"]),
    "key": string(),
    "timeout": TIMEOUT,
    "retries": integer(minimum=0),
    "retry_timeout": number(minimum=0),
    "pass_host": string(enum=["pass", "node", "rewrite"], default="pass"),
    "upstream_host": HOST,
    "keepalive_pool": obj(),
    "checks": obj(),
    "tls": obj(),
    "service_name": string(minLength=1, maxLength=256),
    "discovery_type": string(),
    **TIMESTAMPS,
}
UPSTREAM = comp("Upstream", obj(
    UPSTREAM_PROPS,
    additional=False,
    anyOf=[{"required": ["nodes"]}, {"required": ["service_name", "discovery_type"]}],
    desc="An upstream (APISIX `schema_def.upstream`): `nodes`, or `service_name` with `discovery_type`. "
         "Object keys of `nodes` must be `host` or `host:port` (port 1-65535).",
))

# ---------------------------------------------------------------------------------------------
# Plugins

PLUGIN_META = comp("PluginMeta", obj(
    {
        "disable": boolean(),
        "filter": array(description="An APISIX `vars` expression; the plugin runs only when it matches."),
        "priority": integer(),
        "error_response": {"type": ["string", "object"]},
    },
    desc="APISIX's `_meta`, accepted in every plugin's configuration.",
))

KEY_AUTH = comp("KeyAuth", obj(
    {
        "header": string(default="apikey"),
        "query": string(default="apikey"),
        "hide_credentials": boolean(default=False),
        "realm": string(minLength=1, maxLength=128, pattern="^[ -!#-\\[\\]-~]+$", default="key"),
        "anonymous_consumer": string(minLength=1),
        "_meta": PLUGIN_META,
    },
    desc="`key-auth` on a route, service, plugin config or global rule.",
))
KEY_AUTH_CONSUMER = comp("KeyAuthConsumer", obj(
    {"key": string(description="The consumer's API key; unique across consumers and credentials. "
                               "Answered as `******`; sending `******` back keeps the stored key."),
     "_meta": PLUGIN_META},
    required=["key"],
    desc="`key-auth` in a consumer, consumer group or credential.",
))
MOCKING = comp("Mocking", obj(
    {
        "delay": integer(minimum=0, default=0),
        "response_status": integer(minimum=100, maximum=599, default=200),
        "content_type": string(default="application/json;charset=utf8"),
        "response_example": string(),
        "response_schema": obj(),
        "with_mock_header": boolean(default=True),
        "response_headers": obj(pattern_props={".*": {"type": ["string", "number"]}}),
        "_meta": PLUGIN_META,
    },
    anyOf=[{"required": ["response_example"]}, {"required": ["response_schema"]}],
    desc="`mocking`: answers with a fixed response.",
))

# AIProxySchemas
STRING_MAP = obj(pattern_props={"^[a-zA-Z0-9._-]+$": string()})
GCP_AUTH = obj({
    "service_account_json": string(minLength=1, description="A service account's JSON key (secret)."),
    "max_ttl": integer(minimum=1),
    "expire_early_secs": integer(minimum=0, default=60),
})
AWS_AUTH = obj(
    {
        "access_key_id": string(minLength=1),
        "secret_access_key": string(minLength=1),
        "session_token": string(),
    },
    required=["access_key_id", "secret_access_key"],
)
AI_AUTH = comp("AIAuth", obj(
    additional=False,
    pattern_props={"header": STRING_MAP, "query": STRING_MAP, "gcp": GCP_AUTH, "aws": AWS_AUTH},
    desc="Provider credentials: `header` and `query` maps, `gcp` (service account) or `aws` (SigV4). "
         "Secret values are answered as `******`; sending `******` back keeps the stored value.",
))
AI_OVERRIDE = obj({
    "endpoint": string(minLength=1, description="The provider URL to call instead of the default."),
    "llm_options": obj({"max_tokens": integer(minimum=1)}, additional=False),
    "request_body": obj(
        {k: obj() for k in ["anthropic-messages", "bedrock-converse", "openai-chat", "openai-embeddings",
                            "openai-responses", "passthrough"]},
        additional=False,
    ),
    "request_body_force_override": boolean(default=False),
})
AI_OPTIONS = obj({"model": string()})
PROVIDER_CONF = obj({"project_id": string(), "region": string(minLength=1)})

STATUS_LIST = array(integer(minimum=200, maximum=599), minItems=1, uniqueItems=True)
COUNT = integer(minimum=1, maximum=254)
HEALTH_CHECKS = comp("HealthChecks", obj(
    {
        "active": obj({
            "type": string(enum=["http", "https", "tcp"], default="http"),
            "timeout": number(default=1),
            "concurrency": integer(default=10),
            "host": string(pattern="^\\*$|^\\*?[0-9a-zA-Z._\\[\\]:-]+$"),
            "port": integer(minimum=1, maximum=65535),
            "http_method": string(enum=HTTP_METHODS, default="GET"),
            "http_path": string(default="/"),
            "http_req_body": string(),
            "https_verify_certificate": boolean(default=True),
            "req_headers": array(string(), uniqueItems=True),
            "healthy": obj({
                "interval": integer(minimum=1, default=1),
                "http_statuses": STATUS_LIST,
                "successes": COUNT,
            }),
            "unhealthy": obj({
                "interval": integer(minimum=1, default=1),
                "http_statuses": STATUS_LIST,
                "http_failures": COUNT,
                "tcp_failures": COUNT,
                "timeouts": COUNT,
            }),
        }),
        "passive": obj({
            "type": string(enum=["http", "https", "tcp"], default="http"),
            "healthy": obj({"http_statuses": STATUS_LIST, "successes": COUNT}),
            "unhealthy": obj({
                "http_statuses": STATUS_LIST,
                "http_failures": COUNT,
                "tcp_failures": COUNT,
                "timeouts": COUNT,
            }),
            "cooldown": number(exclusiveMinimum=0, default=10),
        }),
    },
    anyOf=[{"required": ["active"]}, {"required": ["passive"]}],
    desc="Health checks of an AI instance: active probes and/or passive checks on live traffic.",
))

AI_COMMON = {
    "timeout": integer(minimum=1, maximum=600000, default=30000, description="Milliseconds."),
    "max_req_body_size": integer(minimum=1, default=67108864),
    "max_stream_duration_ms": integer(minimum=1),
    "max_response_bytes": integer(minimum=1),
    "keepalive": boolean(default=True),
    "keepalive_timeout": integer(minimum=1000, default=60000),
    "keepalive_pool": integer(minimum=1, default=30),
    "streaming_flush_interval_ms": integer(minimum=0, default=10),
    "ssl_verify": boolean(default=True),
    "logging": obj({"summaries": boolean(default=False), "payloads": boolean(default=False)}),
}
AI_RESILIENCE = {
    "retry": obj(
        {
            "per_instance": integer(minimum=0, maximum=10, default=0),
            "backoff_ms": integer(minimum=0, maximum=60000, default=500),
            "max_backoff_ms": integer(minimum=0, maximum=300000, default=5000),
            "jitter": boolean(default=True),
            "honor_retry_after": boolean(default=True),
            "max_retry_after_ms": integer(minimum=0, maximum=600000, default=30000),
        },
        additional=False,
    ),
    "response_header_timeout_ms": integer(minimum=1, maximum=600000),
    "first_token_timeout_ms": integer(minimum=1, maximum=600000),
    "stream_idle_timeout_ms": integer(minimum=1, maximum=600000),
    "request_timeout_ms": integer(minimum=1, maximum=3600000),
    "stream_continuation": boolean(),
    "breaker": obj(
        {
            "failures": integer(minimum=1, maximum=1000, default=3),
            "open_ms": integer(minimum=1, maximum=3600000, default=10000),
        },
        additional=False,
    ),
}
PROVIDER_REQUIREMENTS = [
    {"if": {"properties": {"provider": {"const": "bedrock"}}, "required": ["provider"]},
     "then": {"required": ["provider_conf", "auth"],
              "properties": {"provider_conf": {"required": ["region"]}, "auth": {"required": ["aws"]}}}},
    {"if": {"properties": {"provider": {"const": "vertex-ai"}}, "required": ["provider"]},
     "then": {"anyOf": [
         {"required": ["provider_conf"], "properties": {"provider_conf": {"required": ["project_id", "region"]}}},
         {"required": ["override"], "properties": {"override": {"required": ["endpoint"]}}},
     ]}},
]
AI_INSTANCE = comp("AIInstance", obj(
    {
        "name": string(minLength=1, maxLength=100, description="Unique within the plugin's instances."),
        "provider": string(enum=PROVIDERS),
        "priority": integer(default=0),
        "weight": integer(minimum=0),
        "auth": AI_AUTH,
        "options": AI_OPTIONS,
        "override": AI_OVERRIDE,
        "provider_conf": PROVIDER_CONF,
        "checks": HEALTH_CHECKS,
        "supports_assistant_prefill": boolean(),
        "examples": array(string(minLength=1), minItems=1, maxItems=64),
        "threshold": number(minimum=-1, maximum=1),
    },
    required=["name", "provider", "weight", "auth"],
    allOf=PROVIDER_REQUIREMENTS,
    desc="One provider instance of `ai-proxy-multi`. `vertex-ai` needs `provider_conf` (project_id and region) "
         "or `override.endpoint`; `bedrock` needs `provider_conf.region` and `auth.aws`.",
))
SEMANTIC_OPTS = obj(
    {
        "embeddings": obj(
            {
                "provider": string(enum=["openai", "azure-openai"]),
                "model": string(minLength=1),
                "endpoint": string(minLength=1),
                "auth": obj({"header": STRING_MAP, "query": STRING_MAP}, additional=False),
                "timeout": integer(minimum=1, maximum=600000, default=3000),
                "ssl_verify": boolean(default=True),
            },
            required=["provider", "model", "auth"],
        ),
        "threshold": number(minimum=-1, maximum=1, default=0),
        "fallback": string(minLength=1, description="The name of an instance."),
        "debugging": boolean(default=False),
    },
    required=["embeddings"],
)
AI_PROXY_MULTI = comp("AIProxyMulti", obj(
    {
        "instances": array(AI_INSTANCE, minItems=1),
        "balancer": obj(
            {
                "algorithm": string(enum=["chash", "roundrobin", "semantic"], default="roundrobin"),
                "hash_on": string(enum=["vars", "header", "cookie", "consumer", "vars_combinations"],
                                  default="vars"),
                "key": string(),
            },
            default={"algorithm": "roundrobin"},
            **{"if": {"properties": {"algorithm": {"const": "chash"}}, "required": ["algorithm"]},
               "then": {"anyOf": [{"properties": {"hash_on": {"const": "consumer"}}, "required": ["hash_on"]},
                                  {"required": ["key"]}]}},
        ),
        "fallback_strategy": {"anyOf": [
            string(enum=["instance_health_and_rate_limiting", "http_429", "http_5xx"]),
            array(string(enum=["rate_limiting", "http_429", "http_5xx", "context_length"])),
        ]},
        "fallback_http_statuses": array(integer(minimum=400, maximum=599), minItems=1, uniqueItems=True),
        "max_retries": integer(minimum=0),
        "retry_on_failure_within_ms": integer(minimum=1),
        "semantic_opts": SEMANTIC_OPTS,
        **AI_RESILIENCE,
        **AI_COMMON,
        "_meta": PLUGIN_META,
    },
    required=["instances"],
    **{"if": {"properties": {"balancer": {"properties": {"algorithm": {"const": "semantic"}},
                                          "required": ["algorithm"]}},
              "required": ["balancer"]},
       "then": {"required": ["semantic_opts"], "properties": {"instances": {"items": {"required": ["examples"]}}}}},
    desc="`ai-proxy-multi` (APISIX 3.18 schema plus Switchboard's resilience fields). Checked beyond the schema: "
         "instance names are unique; `balancer.algorithm: chash` needs `hash_on` and (unless `consumer`) `key`; "
         "`semantic` needs `semantic_opts` and `examples` on every instance.",
))
AI_PROXY = comp("AIProxy", obj(
    {
        "provider": string(enum=PROVIDERS),
        "provider_conf": PROVIDER_CONF,
        "auth": AI_AUTH,
        "options": AI_OPTIONS,
        "override": AI_OVERRIDE,
        **AI_COMMON,
        "_meta": PLUGIN_META,
    },
    required=["provider", "auth"],
    allOf=PROVIDER_REQUIREMENTS,
    desc="`ai-proxy`: a single provider. `vertex-ai` needs `provider_conf` (project_id and region) or "
         "`override.endpoint`; `bedrock` needs `provider_conf.region` and `auth.aws`.",
))

# RateLimitSchemas
QUOTA_TEXT = "^[ \\t]*([0-9]*[1-9][0-9]*|\\$\\{[ \\t]*[a-zA-Z0-9_.-]+[ \\t]*(\\?\\?[ \\t]*[0-9]*[1-9][0-9]*[ \\t]*)?\\})[ \\t]*$"
COUNT_OR_EXPR = {"anyOf": [integer(exclusiveMinimum=0), string(minLength=1, pattern=QUOTA_TEXT)],
                 "description": "A positive integer, or a variable expression resolved per request."}
POSITIVE_OR_EXPR = {"anyOf": [integer(minimum=1), string(minLength=1, pattern=QUOTA_TEXT)],
                    "description": "A positive integer, or a variable expression resolved per request."}
AI_RATE_LIMITING = comp("AIRateLimiting", obj(
    {
        "limit": COUNT_OR_EXPR,
        "time_window": COUNT_OR_EXPR,
        "instances": array(
            obj(
                {"name": string(), "limit": POSITIVE_OR_EXPR, "time_window": POSITIVE_OR_EXPR},
                required=["name", "limit", "time_window"],
            ),
            minItems=1,
        ),
        "limit_strategy": string(enum=["total_tokens", "prompt_tokens", "completion_tokens", "expression"],
                                 default="total_tokens"),
        "cost_expr": string(minLength=1, description="Required when `limit_strategy` is `expression`."),
        "show_limit_quota_header": boolean(default=True),
        "rejected_code": integer(minimum=200, maximum=599, default=503),
        "rejected_msg": string(minLength=1),
        "policy": string(
            enum=["local", "cluster"], default="local",
            description="`local` (this node's counters), or `cluster` (counters shared through a PostgreSQL "
                        "store; refused on other stores). APISIX's `redis*` policies are refused."),
        "sync_interval": integer(minimum=10, maximum=60000, description="Policy `cluster` only."),
        "allow_degradation": boolean(default=False),
        "rules": array(obj(
            {
                "count": COUNT_OR_EXPR,
                "time_window": COUNT_OR_EXPR,
                "key": string(),
                "header_prefix": string(),
            },
            required=["count", "time_window", "key"],
        )),
        "_meta": PLUGIN_META,
    },
    dependentRequired={"limit": ["time_window"], "time_window": ["limit"]},
    dependentSchemas={"sync_interval": {"required": ["policy"], "properties": {"policy": {"const": "cluster"}}}},
    allOf=[{"if": {"properties": {"limit_strategy": {"const": "expression"}}, "required": ["limit_strategy"]},
            "then": {"required": ["cost_expr"]}}],
    oneOf=[
        {"anyOf": [{"required": ["limit", "time_window"]}, {"required": ["instances"]}]},
        {"required": ["rules"]},
    ],
    desc="`ai-rate-limiting` (APISIX 3.18): token quotas per route, per instance or per rule.",
))


def plugins_object(name, per_plugin, desc, **kw):
    return comp(name, obj(per_plugin, additional=False, desc=desc, **kw))


ROUTE_PLUGINS = plugins_object("RoutePlugins", {
    "ai-proxy": AI_PROXY, "ai-proxy-multi": AI_PROXY_MULTI, "ai-rate-limiting": AI_RATE_LIMITING,
    "key-auth": KEY_AUTH, "mocking": MOCKING,
}, "Plugins of a route, service, plugin config or global rule, by name; an unknown name is refused. "
   "Stored with their defaults filled in.")
CONSUMER_PLUGINS = plugins_object("ConsumerPlugins", {
    "ai-proxy": AI_PROXY, "ai-proxy-multi": AI_PROXY_MULTI, "ai-rate-limiting": AI_RATE_LIMITING,
    "key-auth": KEY_AUTH_CONSUMER, "mocking": MOCKING,
}, "Plugins of a consumer or consumer group: auth plugins take their consumer form (`key-auth`: the key).")
CREDENTIAL_PLUGINS = plugins_object("CredentialPlugins", {"key-auth": KEY_AUTH_CONSUMER},
                                    "A credential holds one auth plugin.", maxProperties=1)

# ---------------------------------------------------------------------------------------------
# Resources

ROUTE_REQUIRED = [{"required": [other, uri]} for uri in ["uri", "uris"]
                  for other in ["plugins", "upstream", "upstream_id", "service_id"]]
ROUTE_REQUIRED += [{"required": ["script", "uri"]}, {"required": ["script", "uris"]}]
ROUTE = comp("Route", obj(
    {
        "id": ID,
        "uri": string(minLength=1, maxLength=4096),
        "uris": array(string(), minItems=1, uniqueItems=True),
        "name": string(minLength=1, maxLength=256),
        "desc": string(maxLength=256),
        "labels": LABELS,
        "priority": integer(default=0),
        "methods": METHODS,
        "host": HOST,
        "hosts": array(HOST, minItems=1, uniqueItems=True),
        "remote_addr": REMOTE_ADDR,
        "remote_addrs": array(REMOTE_ADDR, minItems=1, uniqueItems=True),
        "vars": array(description="An APISIX `vars` expression, e.g. `[[\"post_arg.model\", \"==\", \"gpt-4o\"]]`."),
        "filter_func": string(minLength=10, pattern="^function"),
        "script": string(minLength=10, maxLength=102400),
        "plugins": ROUTE_PLUGINS,
        "upstream": UPSTREAM,
        "upstream_id": ID,
        "service_id": ID,
        "plugin_config_id": ID,
        "timeout": TIMEOUT,
        "enable_websocket": boolean(),
        "status": integer(enum=[1, 0], default=1),
        **TIMESTAMPS,
    },
    additional=False,
    anyOf=ROUTE_REQUIRED + [{"required": ["plugin_config_id", "uri"]}, {"required": ["plugin_config_id", "uris"]}],
    not_={"anyOf": [
        {"required": ["host", "hosts"]},
        {"required": ["remote_addr", "remote_addrs"]},
        {"required": ["uri", "uris"]},
    ]},
    desc="A route (APISIX `schema_def.route`): `uri` or `uris`, with `plugins`, `upstream`, `upstream_id`, "
         "`service_id` or `script` (or only a `plugin_config_id`). `upstream_id`, `service_id` and "
         "`plugin_config_id` must name existing objects.",
))
SERVICE = comp("Service", obj(
    {
        "id": ID,
        "name": string(minLength=1, maxLength=256),
        "desc": string(maxLength=256),
        "labels": LABELS,
        "plugins": ROUTE_PLUGINS,
        "upstream": UPSTREAM,
        "upstream_id": ID,
        "script": string(minLength=10, maxLength=102400),
        "enable_websocket": boolean(),
        "hosts": array(HOST, minItems=1, uniqueItems=True),
        **TIMESTAMPS,
    },
    additional=False,
    desc="A service: plugins and an upstream shared by routes.",
))
CONSUMER = comp("Consumer", obj(
    {
        "username": string(minLength=1, maxLength=256, pattern="^[a-zA-Z0-9_-]+$"),
        "desc": string(maxLength=256),
        "labels": LABELS,
        "group_id": ID,
        "plugins": CONSUMER_PLUGINS,
        **TIMESTAMPS,
    },
    required=["username"],
    additional=False,
    desc="A consumer. `group_id` must name an existing consumer group.",
))
CREDENTIAL = comp("Credential", obj(
    {
        "id": ID,
        "name": string(minLength=1, maxLength=256),
        "desc": string(maxLength=256),
        "labels": LABELS,
        "plugins": CREDENTIAL_PLUGINS,
        **TIMESTAMPS,
    },
    additional=False,
    desc="A consumer's credential: one auth plugin.",
))


def plugin_set(name, plugins, with_name, desc):
    props = {"id": ID, "plugins": plugins, **TIMESTAMPS}
    if with_name:
        props.update({"name": string(minLength=1, maxLength=256), "desc": string(maxLength=256), "labels": LABELS})
    return comp(name, obj(props, required=["plugins"], additional=False, desc=desc))


CONSUMER_GROUP = plugin_set("ConsumerGroup", CONSUMER_PLUGINS, True, "A consumer group: plugins its consumers share.")
PLUGIN_CONFIG = plugin_set("PluginConfig", ROUTE_PLUGINS, True, "A plugin config: plugins routes share.")
GLOBAL_RULE = plugin_set("GlobalRule", ROUTE_PLUGINS, False,
                         "A global rule: plugins run for every request. A plugin may be in one global rule only.")

PEM = string(minLength=128, maxLength=65536)
SSL = comp("SSL", obj(
    {
        "id": ID,
        "desc": string(maxLength=256),
        "labels": LABELS,
        "type": string(enum=["server", "client"], default="server"),
        "cert": PEM,
        "key": string(minLength=128, maxLength=65536,
                      description="The PEM private key. Answered as `******`; sending `******` back keeps it."),
        "sni": HOST,
        "snis": array(HOST, minItems=1),
        "client": obj(
            {
                "ca": PEM,
                "depth": integer(minimum=0, default=1),
                "skip_mtls_uri_regex": array(string(), minItems=1, uniqueItems=True),
            },
            required=["ca"],
            additional=False,
        ),
        "status": integer(enum=[1, 0], default=1),
        "ssl_protocols": array(string(enum=["TLSv1.2", "TLSv1.3"]), uniqueItems=True),
        **TIMESTAMPS,
    },
    required=["cert", "key"],
    additional=False,
    **{"if": {"properties": {"type": {"const": "client"}}, "required": ["type"]},
       "else": {"oneOf": [{"required": ["sni"]}, {"required": ["snis"]}]}},
    desc="A certificate and key (PEM) for the proxy's TLS listeners, picked by SNI. A `server` certificate needs "
         "`sni` or `snis` (not both); the certificate must parse, match the key and not have expired.",
))
VAULT_SECRET = comp("VaultSecret", obj(
    {
        "id": string(description="Ignored: the id is the path's (`vault/<id>` when answered)."),
        "uri": string(minLength=1, pattern="^https?://"),
        "prefix": string(minLength=1),
        "token": string(minLength=1, description="Answered as `******`; sending `******` back keeps it."),
        "namespace": string(),
        "timeout": number(maximum=60, exclusiveMinimum=0),
        **TIMESTAMPS,
    },
    required=["uri", "prefix", "token"],
    additional=False,
    desc="A HashiCorp Vault KV engine, read by `$secret://vault/<id>/<path>/<field>` references.",
))
PLUGIN_METADATA = comp("PluginMetadata", obj(
    desc="Metadata of a plugin. None of this build's plugins has metadata, so every write is refused (400).",
))

# ---------------------------------------------------------------------------------------------
# Variants


def strip_timestamps(schema):
    """Request variant: no `create_time`/`update_time` anywhere."""
    if isinstance(schema, dict):
        out = {}
        for k, v in schema.items():
            if k == "properties":
                out[k] = {p: strip_timestamps(s) for p, s in v.items() if p not in TIMESTAMPS}
            else:
                out[k] = strip_timestamps(v)
        return out
    if isinstance(schema, list):
        return [strip_timestamps(x) for x in schema]
    return schema


SUBSCHEMA_MAPS = {"properties", "patternProperties", "dependentSchemas", "$defs"}
SUBSCHEMA_LISTS = {"anyOf", "oneOf", "allOf", "prefixItems"}
SUBSCHEMA_ONE = {"items", "not", "if", "then", "else", "additionalProperties", "contains"}


def stored(schema, root=True):
    """Stored variant (see the module docstring)."""
    if not isinstance(schema, dict):
        return schema
    out = {}
    for k, v in schema.items():
        if k == "$ref":
            out[k] = v + "Stored"
        elif k in SUBSCHEMA_MAPS:
            out[k] = {p: stored(s, root=False) for p, s in v.items()}
        elif k in SUBSCHEMA_LISTS:
            # Branches of a combinator describe the same value: root-ness passes through.
            out[k] = [stored(s, root=root) for s in v]
        elif k in SUBSCHEMA_ONE and isinstance(v, dict):
            out[k] = stored(v, root=(root if k in ("not", "if", "then", "else") else False))
        elif k in ("pattern", "minLength", "uniqueItems", "default", "propertyNames"):
            continue
        else:
            out[k] = copy.deepcopy(v)
    t = out.get("type")
    if not root:
        if t == "object":
            out["type"] = ["object", "array"]
            out["maxItems"] = 0
        elif t == "array":
            out["type"] = ["array", "object"]
            out["maxProperties"] = 0
    return out


# ---------------------------------------------------------------------------------------------
# Responses and envelopes

JSON = "application/json"
VERSION_HEADER = {"X-API-VERSION": {
    "description": "Always `v3`, as APISIX's Admin API.",
    "required": True,
    "schema": {"type": "string", "enum": ["v3"]},
}}
STALE_HEADER = {"X-Switchboard-Stale": {
    "description": "`true` when this cluster node is cut off from its database and answers from the "
                   "configuration it last loaded.",
    "required": False,
    "schema": {"type": "string", "enum": ["true"]},
}}

ERROR = {
    "type": "object",
    "properties": {
        "error_msg": {"type": "string"},
        "description": {"type": "string"},
        "req_body": {"type": "string", "description": "The body that was not valid JSON, as received."},
    },
    "required": ["error_msg"],
    "additionalProperties": False,
}
KEY_NOT_FOUND = {
    "type": "object",
    "properties": {"message": {"type": "string", "enum": ["Key not found"]}},
    "required": ["message"],
    "additionalProperties": False,
}
AUTH_ERROR = {
    "type": "object",
    "properties": {
        "error_msg": {"type": "string", "enum": ["failed to check token"]},
        "description": {"type": "string", "enum": ["missing apikey", "wrong apikey", "invalid method for role viewer"]},
    },
    "required": ["error_msg", "description"],
    "additionalProperties": False,
}
DELETED = {
    "type": "object",
    "properties": {"deleted": {"type": "string", "enum": ["1"]}, "key": {"type": "string"}},
    "required": ["deleted", "key"],
    "additionalProperties": False,
}

EXTRA_SCHEMAS = {
    "Error": ERROR,
    "KeyNotFound": KEY_NOT_FOUND,
    "AuthError": AUTH_ERROR,
    "Deleted": DELETED,
}


HEADERS = {**VERSION_HEADER, **STALE_HEADER}


def response(desc, schema=None, headers=True, stale=False):
    r = {"description": desc}
    if headers:
        h = {"X-API-VERSION": {"$ref": "#/components/headers/X-API-VERSION"}}
        if stale:
            h["X-Switchboard-Stale"] = {"$ref": "#/components/headers/X-Switchboard-Stale"}
        r["headers"] = h
    if schema is not None:
        r["content"] = {JSON: {"schema": schema}}
    return r


def error_response(desc, get=False):
    return response(desc, ref("Error"), stale=get)


R_401 = {"$ref": "#/components/responses/Unauthorized"}
R_413 = {"$ref": "#/components/responses/TooLarge"}
R_415 = {"$ref": "#/components/responses/UnsupportedMediaType"}
R_409 = {"$ref": "#/components/responses/Conflict"}
R_500 = {"$ref": "#/components/responses/StoreFailed"}
R_503 = {"$ref": "#/components/responses/StoreUnavailable"}
R_405_RO = {"$ref": "#/components/responses/ReadOnly"}
R_404_KEY = {"$ref": "#/components/responses/KeyNotFound"}

RESPONSES = {
    "BadWrite": error_response(
        "The body is not valid JSON (`invalid request body: ...`, with `req_body`), breaks the schema "
        "(`invalid configuration: ...`), names an unknown plugin (`unknown plugin [x]`) or a missing object, "
        "has a bad plugin configuration (`failed to check the configuration of plugin <name> err: ...`), "
        "or the ids disagree."),
    "BadList": error_response(
        "An invalid regular expression in `name` or `uri`, filters that took over 200 ms to match, or "
        "`page_size` outside 10-500.", get=True),
    "Deleted": response("Deleted.", ref("Deleted")),
    "Unauthorized": response(
        "No key (`missing apikey`), a wrong key (`wrong apikey`), or a viewer key used to write "
        "(`invalid method for role viewer`).", ref("AuthError")),
    "TooLarge": response("The body is larger than 1.5 MiB (1,572,864 bytes).", ref("Error")),
    "UnsupportedMediaType": response(
        "A Content-Type other than `application/json` (or curl's default `application/x-www-form-urlencoded`, "
        "read as JSON); `application/merge-patch+json` too.", ref("Error")),
    "Conflict": response("Another cluster node kept writing first (after 20 tries); try again.", ref("Error")),
    "StoreFailed": response("The store could not be written.", ref("Error")),
    "StoreUnavailable": response("The cluster store (PostgreSQL) is unavailable.", ref("Error")),
    "ReadOnly": response(
        "The configuration comes from a standalone file: the Admin API is read-only.", ref("Error")),
    "KeyNotFound": response("No such object.", ref("KeyNotFound"), stale=True),
}


def value_schema(kind_component, required, key_prefix):
    """The `value` of an answer: the stored variant, an object with the fields the gateway sets."""
    extra = {"type": "object"}
    if required:
        extra["required"] = required
    return {"allOf": [ref(kind_component + "Stored"), extra]}


KINDS = {}  # kind -> dict(component, singular, key regex, value required fields)


def add_kind(kind, component, singular, key_pattern, required):
    name = component
    EXTRA_SCHEMAS[name + "Value"] = value_schema(component, required, key_pattern)
    EXTRA_SCHEMAS[name + "Item"] = {
        "type": "object",
        "description": f"One {singular} as read: its key, value and store revisions.",
        "properties": {
            "key": {"type": "string", "pattern": key_pattern},
            "value": ref(name + "Value"),
            "createdIndex": {"type": "integer"},
            "modifiedIndex": {"type": "integer"},
        },
        "required": ["key", "value", "createdIndex", "modifiedIndex"],
        "additionalProperties": False,
    }
    EXTRA_SCHEMAS[name + "Written"] = {
        "type": "object",
        "description": f"The {singular} as stored by a write (defaults filled in, secrets masked).",
        "properties": {"key": {"type": "string", "pattern": key_pattern}, "value": ref(name + "Value")},
        "required": ["key", "value"],
        "additionalProperties": False,
    }
    EXTRA_SCHEMAS[name + "List"] = {
        "type": "object",
        "description": f"{singular}s kept by the filters: `total` counts them all, `list` holds the page.",
        "properties": {
            "total": {"type": "integer", "minimum": 0},
            "list": {"type": "array", "items": ref(name + "Item")},
        },
        "required": ["total", "list"],
        "additionalProperties": False,
    }
    KINDS[kind] = name


STAMPS = ["create_time", "update_time"]
add_kind("routes", "Route", "route", "^/apisix/routes/[^/]+$", ["id", "priority", "status"] + STAMPS)
add_kind("services", "Service", "service", "^/apisix/services/[^/]+$", ["id"] + STAMPS)
add_kind("upstreams", "Upstream", "upstream", "^/apisix/upstreams/[^/]+$", ["id"] + STAMPS)
add_kind("consumers", "Consumer", "consumer", "^/apisix/consumers/[^/]+$", ["username"] + STAMPS)
add_kind("credentials", "Credential", "credential", "^/apisix/consumers/[^/]+/credentials/[^/]+$", ["id"] + STAMPS)
add_kind("consumer_groups", "ConsumerGroup", "consumer group", "^/apisix/consumer_groups/[^/]+$",
         ["id", "plugins"] + STAMPS)
add_kind("plugin_configs", "PluginConfig", "plugin config", "^/apisix/plugin_configs/[^/]+$", ["id", "plugins"] + STAMPS)
add_kind("global_rules", "GlobalRule", "global rule", "^/apisix/global_rules/[^/]+$", ["id", "plugins"] + STAMPS)
add_kind("ssls", "SSL", "ssl", "^/apisix/ssls/[^/]+$", ["id", "cert", "key"] + STAMPS)
add_kind("secrets", "VaultSecret", "secret", "^/apisix/secrets/vault/[^/]+$", ["id", "uri", "prefix", "token"] + STAMPS)
add_kind("plugin_metadata", "PluginMetadata", "plugin metadata", "^/apisix/plugin_metadata/[^/]+$", [])

# ---------------------------------------------------------------------------------------------
# Parameters

PARAMS = {
    "name": {
        "name": "name", "in": "query", "required": False,
        "description": "A regular expression matched within each object's `name`; objects without a name are "
                       "left out. An invalid expression, or matching that takes over 200 ms in all, is a 400.",
        "schema": {"type": "string"},
    },
    "uri": {
        "name": "uri", "in": "query", "required": False,
        "description": "A regular expression matched within each object's `uri` or any of its `uris`.",
        "schema": {"type": "string"},
    },
    "label": {
        "name": "label", "in": "query", "required": False,
        "description": "Keeps the objects that have a label with this key.",
        "schema": {"type": "string"},
    },
    "filter": {
        "name": "filter", "in": "query", "required": False,
        "description": "`field=value` pairs joined by `&` (percent-encoded within the parameter), e.g. "
                       "`service_id=1` or `upstream_id=u1`; other fields are ignored.",
        "schema": {"type": "string"},
        "example": "service_id=1",
    },
    "page": {
        "name": "page", "in": "query", "required": False,
        "description": "With `page_size`: the 1-based page to answer (a page past the end is empty).",
        "schema": {"type": "integer", "minimum": 1},
    },
    "page_size": {
        "name": "page_size", "in": "query", "required": False,
        "description": "With `page`: objects per page, 10-500 (else 400). Without `page` the list is not paged.",
        "schema": {"type": "integer", "minimum": 10, "maximum": 500},
    },
}
LIST_PARAMS = [{"$ref": "#/components/parameters/" + p} for p in PARAMS]


def path_param(name, desc, schema):
    return {"name": name, "in": "path", "required": True, "description": desc, "schema": schema}


ID_PATH_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[a-zA-Z0-9_.-]+$"}
P_ID = path_param("id", "The object's id.", ID_PATH_SCHEMA)
P_USERNAME = path_param("username", "The consumer's username.",
                        {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[a-zA-Z0-9_-]+$"})
P_CRED = path_param("credential_id", "The credential's id.", ID_PATH_SCHEMA)
P_SUB = path_param(
    "sub_path",
    "The field to replace, e.g. `desc` or `plugins`; deeper fields are further `/`-separated segments "
    "(`plugins/mocking`), array elements 0-based indexes. Missing objects on the way are created.",
    {"type": "string", "minLength": 1, "pattern": "^[^/]+$"})
P_PLUGIN = path_param("plugin_name", "A plugin's name.", {"type": "string", "minLength": 1, "pattern": "^[^/]+$"})

# ---------------------------------------------------------------------------------------------
# Operations

SECURITY = [{"adminKey": []}, {"adminKeyQuery": []}]


def body(schema, desc=None, examples=None, required=True):
    media = {"schema": schema}
    if examples:
        media["examples"] = {k: {"summary": s, "value": v} for k, (s, v) in examples.items()}
    b = {"required": required, "content": {JSON: media}}
    if desc:
        b["description"] = desc
    return b


def write_errors(not_found=False, not_found_desc=None):
    r = {"400": {"$ref": "#/components/responses/BadWrite"}, "401": R_401}
    if not_found:
        r["404"] = not_found
    r.update({"405": R_405_RO, "409": R_409, "413": R_413, "415": R_415, "500": R_500, "503": R_503})
    return r


def op(op_id, summary, tag, responses, params=None, request=None, desc=None, security=True):
    o = {"operationId": op_id, "summary": summary, "tags": [tag]}
    if desc:
        o["description"] = desc
    if params:
        o["parameters"] = params
    if request:
        o["requestBody"] = request
    o["responses"] = responses
    if not security:
        o["security"] = []
    return o


def list_op(op_id, summary, tag, name, extra_404=None, desc=None):
    r = {
        "200": response("The list.", ref(name + "List"), stale=True),
        "400": {"$ref": "#/components/responses/BadList"},
        "401": R_401,
    }
    if extra_404:
        r["404"] = extra_404
    return op(op_id, summary, tag, r, params=LIST_PARAMS, desc=desc)


def get_op(op_id, summary, tag, name, params=None):
    return op(op_id, summary, tag, {
        "200": response("The object.", ref(name + "Item"), stale=True),
        "401": R_401,
        "404": R_404_KEY,
    }, params=params)


def put_op(op_id, summary, tag, name, schema, params=None, desc=None, examples=None, not_found=None):
    r = {
        "200": response("Replaced.", ref(name + "Written")),
        "201": response("Created.", ref(name + "Written")),
    }
    r.update(write_errors(not_found))
    return op(op_id, summary, tag, r, params=params, request=body(schema, examples=examples), desc=desc)


def post_op(op_id, summary, tag, name, schema, examples=None):
    r = {"201": response("Created with a generated id (20 digits, increasing).", ref(name + "Written"))}
    r.update(write_errors())
    return op(op_id, summary, tag, r, request=body(schema, examples=examples),
              desc="Creates an object with a generated id; an `id` in the body is refused.")


MERGE_PATCH = {
    "type": "object",
    "description": "A JSON merge patch (RFC 7396): members replace the stored ones, objects merge, `null` "
                   "deletes. The result is validated as a whole (defaults filled in again).",
}
ANY_VALUE = {"description": "Any JSON value: it replaces the field at the sub-path."}


def is_object_schema(schema):
    if "$ref" in schema:
        return SCHEMAS[schema["$ref"][len(REF):]].get("type") == "object"
    return schema.get("type") == "object"


def merge_patch_schema(name):
    """`<Kind>Patch`: the kind's top-level fields, each also `null` (deletes it); objects merge."""
    component = SCHEMAS[name]
    props = {}
    for field, schema in component.get("properties", {}).items():
        if field in TIMESTAMPS:
            continue
        if is_object_schema(schema):
            props[field] = {"type": ["object", "null"],
                            "description": "Merged into the stored object (RFC 7396); `null` deletes it."}
        else:
            props[field] = {"anyOf": [schema, {"type": "null"}]}
    patch = {
        "type": "object",
        "description": f"A JSON merge patch (RFC 7396) of the object (`{name}`), sent as `application/json`: members replace "
                       "the stored ones, objects merge, `null` deletes. The result is validated as a whole "
                       "(defaults filled in again); `create_time`/`update_time` are refused.",
        "properties": props,
    }
    if component.get("additionalProperties") is False:
        patch["additionalProperties"] = False
    EXTRA_SCHEMAS[name + "Patch"] = patch
    return ref(name + "Patch")


def patch_op(op_id, summary, tag, name, params, sub=False):
    r = {"200": response("Patched.", ref(name + "Written"))}
    r.update(write_errors(R_404_KEY))
    if sub:
        return op(op_id, summary, tag, r, params=params, request=body(ANY_VALUE),
                  desc="Replaces one field (a sub-path of the object) and validates the result; "
                       "`create_time`/`update_time` keep their stored values. A sub-path that crosses a "
                       "non-object (other than an array index) is a 400.")
    return op(op_id, summary, tag, r, params=params, request=body(merge_patch_schema(name)),
              desc="Merge-patches the object (RFC 7396; sent as `application/json`) and validates the result. "
                   "`create_time`/`update_time` in the patch are refused.")


def delete_op(op_id, summary, tag, params, in_use=None):
    r = {"200": {"$ref": "#/components/responses/Deleted"}}
    if in_use:
        r["400"] = error_response(in_use)
    r.update({"401": R_401, "404": R_404_KEY, "405": R_405_RO, "409": R_409, "500": R_500, "503": R_503})
    return op(op_id, summary, tag, r, params=params)


def with_required(component, fields):
    return {"allOf": [ref(component), {"required": fields}]}


def without(component, fields, desc=None):
    s = {"allOf": [ref(component), {"not": {"anyOf": [{"required": [f]} for f in fields]}}]}
    if desc:
        s["description"] = desc
    return s


EXAMPLES = {
    "routes": {
        "mocking": ("A mocked answer", {"uri": "/hello", "plugins": {"mocking": {"response_example": "hi"}}}),
        "ai": ("Two providers behind one route", {
            "uri": "/v1/chat/completions", "methods": ["POST"],
            "plugins": {"ai-proxy-multi": {
                "fallback_strategy": "instance_health_and_rate_limiting",
                "instances": [
                    {"name": "openai", "provider": "openai", "weight": 8,
                     "auth": {"header": {"Authorization": "Bearer sk-openai-example"}},
                     "options": {"model": "gpt-4o"}},
                    {"name": "deepseek", "provider": "deepseek", "weight": 2,
                     "auth": {"header": {"Authorization": "Bearer sk-deepseek-example"}},
                     "options": {"model": "deepseek-chat"}},
                ]}}}),
    },
    "services": {"mocking": ("A service answering itself", {"plugins": {"mocking": {"response_example": "svc"}}})},
    "upstreams": {"nodes": ("Weighted nodes", {"nodes": {"127.0.0.1:8001": 8, "127.0.0.1:8002": 2}})},
    "consumers": {"key": ("A consumer with a key", {"username": "johndoe", "plugins": {"key-auth": {"key": "john-inline-key"}}})},
    "credentials": {"key": ("A key-auth credential", {"plugins": {"key-auth": {"key": "john-key"}}})},
    "consumer_groups": {"limit": ("A token quota for a group", {
        "plugins": {"ai-rate-limiting": {"limit": 10000, "time_window": 3600}}})},
    "plugin_configs": {"mocking": ("Shared plugins", {"plugins": {"mocking": {"response_example": "shared"}}})},
    "global_rules": {"key": ("Key auth everywhere", {"plugins": {"key-auth": {}}})},
    "secrets": {"vault": ("A Vault KV engine", {
        "uri": "http://127.0.0.1:8200", "prefix": "kv/apisix", "token": "vault-token-example"})},
}


def examples_with_id(kind, id_field="id"):
    out = {}
    for k, (s, v) in EXAMPLES.get(kind, {}).items():
        v = dict(v)
        if id_field not in v:
            v = {id_field: "example-" + k, **v}
        out[k] = (s, v)
    return out


PATHS = {}
BASE = "/apisix/admin"


def generic_kind(kind, tag, singular, post):
    name = KINDS[kind]
    cap = name
    collection = {
        "get": list_op(f"list{cap}s", f"List {singular}s", tag, name),
        "put": put_op(f"put{cap}WithIdInBody", f"Create or replace a {singular} (id in the body)", tag, name,
                      with_required(name, ["id"]), examples=examples_with_id(kind)),
    }
    if post:
        collection["post"] = post_op(f"create{cap}", f"Create a {singular} with a generated id", tag, name,
                                     without(name, ["id"]), examples=EXAMPLES.get(kind))
    else:
        collection["description"] = f"`POST` is not supported for {singular}s: it is answered with 405 " \
                                    f"(`not supported `POST` method for {singular}`)."
    PATHS[f"{BASE}/{kind}"] = collection
    in_use = {
        "upstreams": "The upstream is used by a route or service (`can not delete this upstream, ...`).",
        "services": "The service is used by a route or service (`can not delete this service, ...`).",
        "plugin_configs": "The plugin config is used by a route.",
        "consumer_groups": "The consumer group is used by a consumer.",
    }.get(kind)
    PATHS[f"{BASE}/{kind}/{{id}}"] = {
        "parameters": [P_ID],
        "get": get_op(f"get{cap}", f"Get a {singular}", tag, name),
        "put": put_op(f"put{cap}", f"Create or replace a {singular}", tag, name, ref(name),
                      desc="An `id` in the body must equal the path's.", examples=EXAMPLES.get(kind)),
        "patch": patch_op(f"patch{cap}", f"Merge-patch a {singular}", tag, name, None),
        "delete": delete_op(f"delete{cap}", f"Delete a {singular}", tag, None, in_use),
    }
    PATHS[f"{BASE}/{kind}/{{id}}/{{sub_path}}"] = {
        "parameters": [P_ID, P_SUB],
        "patch": patch_op(f"patch{cap}SubPath", f"Replace a field of a {singular}", tag, name, None, sub=True),
    }


generic_kind("routes", "Routes", "route", True)
generic_kind("services", "Services", "service", True)
generic_kind("upstreams", "Upstreams", "upstream", True)
generic_kind("consumer_groups", "Consumer groups", "consumer group", False)
generic_kind("plugin_configs", "Plugin configs", "plugin config", False)
generic_kind("global_rules", "Global rules", "global rule", False)
generic_kind("ssls", "SSLs", "ssl", True)

# Consumers
CONSUMER_NOT_FOUND = response("No such consumer (`consumer not found`).", ref("Error"), stale=True)
PATHS[f"{BASE}/consumers"] = {
    "description": "`POST` and `PATCH` are not supported for consumers: they are answered with 405.",
    "get": list_op("listConsumers", "List consumers", "Consumers", "Consumer"),
    "put": put_op("putConsumerWithUsernameInBody", "Create or replace a consumer (username in the body)", "Consumers",
                  "Consumer", ref("Consumer"), examples=EXAMPLES["consumers"]),
}
PATHS[f"{BASE}/consumers/{{username}}"] = {
    "parameters": [P_USERNAME],
    "get": get_op("getConsumer", "Get a consumer", "Consumers", "Consumer"),
    "put": put_op("putConsumer", "Create or replace a consumer", "Consumers", "Consumer",
                  ref("ConsumerBody"), examples=EXAMPLES["consumers"],
                  desc="A `username` in the body must equal the path's."),
    "delete": delete_op("deleteConsumer", "Delete a consumer and its credentials", "Consumers", None),
}
PATHS[f"{BASE}/consumers/{{username}}/credentials"] = {
    "parameters": [P_USERNAME],
    "description": "`POST` and `PATCH` are not supported for credentials: they are answered with 405.",
    "get": list_op("listCredentials", "List a consumer's credentials", "Credentials", "Credential",
                   extra_404=CONSUMER_NOT_FOUND),
    "put": put_op("putCredentialWithIdInBody", "Create or replace a credential (id in the body)", "Credentials",
                  "Credential", with_required("Credential", ["id"]), examples=examples_with_id("credentials"),
                  not_found=response("No such consumer (`consumer not found`).", ref("Error"))),
}
PATHS[f"{BASE}/consumers/{{username}}/credentials/{{credential_id}}"] = {
    "parameters": [P_USERNAME, P_CRED],
    "get": op("getCredential", "Get a credential", "Credentials", {
        "200": response("The object.", ref("CredentialItem"), stale=True),
        "401": R_401,
        "404": response("No such consumer (`consumer not found`) or credential (`Key not found`).",
                        {"anyOf": [ref("Error"), ref("KeyNotFound")]}, stale=True),
    }),
    "put": put_op("putCredential", "Create or replace a credential", "Credentials", "Credential", ref("Credential"),
                  desc="The path's id wins over one in the body.", examples=EXAMPLES["credentials"],
                  not_found=response("No such consumer (`consumer not found`).", ref("Error"))),
    "delete": delete_op("deleteCredential", "Delete a credential", "Credentials", None),
}
PATHS[f"{BASE}/consumers/{{username}}/credentials/{{credential_id}}"]["delete"]["responses"]["404"] = response(
    "No such consumer (`consumer not found`) or credential (`Key not found`).",
    {"anyOf": [ref("Error"), ref("KeyNotFound")]})

# Secrets
PATHS[f"{BASE}/secrets"] = {
    "get": list_op("listSecrets", "List secret managers' objects", "Secrets", "VaultSecret"),
}
PATHS[f"{BASE}/secrets/vault"] = {
    "get": list_op("listVaultSecrets", "List Vault secrets", "Secrets", "VaultSecret"),
}
PATHS[f"{BASE}/secrets/vault/{{id}}"] = {
    "parameters": [P_ID],
    "get": get_op("getVaultSecret", "Get a Vault secret", "Secrets", "VaultSecret"),
    "put": put_op("putVaultSecret", "Create or replace a Vault secret", "Secrets", "VaultSecret", ref("VaultSecret"),
                  desc="Refused (400) when objects reference it and the new settings cannot resolve their "
                       "references.", examples=EXAMPLES["secrets"]),
    "patch": patch_op("patchVaultSecret", "Merge-patch a Vault secret", "Secrets", "VaultSecret", None),
    "delete": delete_op("deleteVaultSecret", "Delete a Vault secret", "Secrets", None,
                        "An object's plugins still reference it (`can not delete this secret, ...`)."),
}
PATHS[f"{BASE}/secrets/vault/{{id}}/{{sub_path}}"] = {
    "parameters": [P_ID, P_SUB],
    "patch": patch_op("patchVaultSecretSubPath", "Replace a field of a Vault secret", "Secrets", "VaultSecret", None,
                      sub=True),
}

# Plugin metadata
PATHS[f"{BASE}/plugin_metadata"] = {
    "get": list_op("listPluginMetadata", "List plugin metadata", "Plugin metadata", "PluginMetadata"),
}
PATHS[f"{BASE}/plugin_metadata/{{plugin_name}}"] = {
    "parameters": [P_PLUGIN],
    "get": get_op("getPluginMetadata", "Get a plugin's metadata", "Plugin metadata", "PluginMetadata"),
    "put": put_op("putPluginMetadata", "Set a plugin's metadata", "Plugin metadata", "PluginMetadata",
                  ref("PluginMetadata"),
                  desc="Refused (400) for an unknown plugin (`invalid plugin name: ...`) and for a plugin "
                       "without metadata (all of this build's)."),
    "delete": delete_op("deletePluginMetadata", "Delete a plugin's metadata", "Plugin metadata", None),
}

# Plugins and this document
PATHS[f"{BASE}/plugins/list"] = {
    "get": op("listPlugins", "Names of the plugins this build has", "Plugins", {
        "200": response("Plugin names, sorted.", {
            "type": "array", "items": {"type": "string", "enum": PLUGINS}, "uniqueItems": True,
            "example": PLUGINS}),
        "401": R_401,
    }),
}
PATHS[f"{BASE}/openapi.json"] = {
    "get": op("getOpenAPIDocument", "This document", "Meta", {
        "200": {"description": "The OpenAPI document of the Admin API.",
                "content": {JSON: {"schema": {"type": "object", "required": ["openapi", "info", "paths"],
                                                "properties": {"openapi": {"type": "string"}}}}}},
    }, security=False, desc="Served without a key."),
}

# ---------------------------------------------------------------------------------------------
# Assemble

schemas = {}
for n in ORDER:
    schemas[n] = strip_timestamps(SCHEMAS[n])
# ConsumerBody: `username` optional (the path's).
consumer_body = copy.deepcopy(schemas["Consumer"])
consumer_body.pop("required", None)
consumer_body["description"] = "A consumer; `username` may be left out (it is the path's) and must equal it if given."
EXTRA_SCHEMAS["ConsumerBody"] = consumer_body
for n in ORDER:
    # Object roots stay `object` here; where a component is used nested, stored() already made the
    # reference point to the Stored variant and tolerance is added at the use site below.
    schemas[n + "Stored"] = stored(SCHEMAS[n], root=True)


def tolerate_refs(schema, root=True):
    """In Stored variants, a nested `$ref` to an object component also accepts `[]`."""
    if isinstance(schema, dict):
        if "$ref" in schema and not root and schema["$ref"].endswith("Stored"):
            target = schema["$ref"][len(REF):-len("Stored")]
            if SCHEMAS[target].get("type") == "object":
                return {"anyOf": [schema, {"type": "array", "maxItems": 0}]}
            return schema
        out = {}
        for k, v in schema.items():
            if k in SUBSCHEMA_MAPS:
                out[k] = {p: tolerate_refs(s, False) for p, s in v.items()}
            elif k in SUBSCHEMA_LISTS:
                out[k] = [tolerate_refs(s, root) for s in v]
            elif k in SUBSCHEMA_ONE and isinstance(v, dict):
                out[k] = tolerate_refs(v, root if k in ("not", "if", "then", "else") else False)
            else:
                out[k] = v
        return out
    return schema


for n in ORDER:
    schemas[n + "Stored"] = tolerate_refs(schemas[n + "Stored"])
    schemas[n + "Stored"]["description"] = (
        f"A stored {n} as the Admin API answers it (see `{n}`): defaults filled in, secrets masked as "
        "`******`, `create_time`/`update_time` set.")
schemas.update(EXTRA_SCHEMAS)

doc = {
    "openapi": "3.1.0",
    "info": {
        "title": "Switchboard Admin API",
        "version": "3",
        "description": (
            "The Admin API of Switchboard, compatible with Apache APISIX's Admin API v3: the same paths, methods, "
            "status codes, envelopes and error messages.\n\n"
            "* Authenticate with the `X-API-KEY` header (or the `api_key` query parameter). A viewer key may only "
            "read.\n"
            "* Bodies are JSON, up to 1.5 MiB. A body without Content-Type, or with curl's default "
            "`application/x-www-form-urlencoded`, is read as JSON too; other types get 415.\n"
            "* Writes answer `{\"key\": ..., \"value\": ...}` with the object as stored (defaults filled in, "
            "secrets masked as `******`); reads add `createdIndex` and `modifiedIndex`; lists answer "
            "`{\"total\": N, \"list\": [...]}`; deletes `{\"deleted\": \"1\", \"key\": ...}`.\n"
            "* Errors answer `{\"error_msg\": \"...\"}`, except a missing object: `{\"message\": \"Key not found\"}` (404).\n"
            "* As in APISIX (Lua cannot tell them apart), an empty array is accepted and stored where an object "
            "is expected and an empty object where an array is; the `...Stored` schemas allow that.\n"
            "* Unknown paths, and methods a path does not have, answer 404 `{\"error_msg\": \"not found\"}` "
            "(an unknown resource type: `Unsupported resource type: <name>`). `POST` to consumers, credentials, "
            "consumer groups, plugin configs and global rules, and `PATCH` of consumers and credentials, answer "
            "405.\n"
            "* On a gateway whose configuration comes from a standalone file every write answers 405."
        ),
    },
    "servers": [{"url": "http://127.0.0.1:9180", "description": "The default admin listener."}],
    "security": SECURITY,
    "tags": [{"name": t} for t in [
        "Routes", "Services", "Upstreams", "Consumers", "Credentials", "Consumer groups", "Plugin configs",
        "Global rules", "SSLs", "Secrets", "Plugin metadata", "Plugins", "Meta"]],
    "paths": PATHS,
    "components": {
        "securitySchemes": {
            "adminKey": {"type": "apiKey", "in": "header", "name": "X-API-KEY",
                         "description": "An admin key (reads and writes) or a viewer key (reads)."},
            "adminKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key",
                              "description": "The same key as a query parameter."},
        },
        "parameters": PARAMS,
        "headers": HEADERS,
        "responses": RESPONSES,
        "schemas": schemas,
    },
}

import os

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = os.path.join(root, "docs", "admin-api.openapi.json")
with open(out, "w") as f:
    json.dump(doc, f, indent=2, ensure_ascii=False)
    f.write("\n")
# The Swift copy: minified, in a raw multi-line string literal whose lines end in `\#`
# (a continuation: no newline), so no line is longer than 100 characters.
compact = json.dumps(doc, separators=(",", ":"), ensure_ascii=True)
assert '"""#' not in compact and "\\#" not in compact  # neither may end the literal or escape
lines = [compact[i : i + 96] for i in range(0, len(compact), 96)]
swift = os.path.join(root, "Sources", "SwitchboardServer", "Admin", "AdminOpenAPI.swift")
with open(swift, "w") as f:
    f.write("// Generated by scripts/admin_openapi.py from the same data as docs/admin-api.openapi.json.\n")
    f.write("// Do not edit: change the script and run it again.\n\n")
    f.write("/// The Admin API's OpenAPI 3.1 document, served at `GET /apisix/admin/openapi.json`.\n")
    f.write("enum AdminOpenAPI {\n")
    f.write('    static let document = #"""\n')
    for line in lines:
        f.write(line + "\\#\n")
    f.write('"""#\n')  # at column 0: the lines above are not indented
    f.write("}\n")
print(out, swift, len(PATHS), "paths")

/// An access log format (`$remote_addr - [$time_local] "$request_line" $status ...`) compiled
/// once per configuration into literal and variable parts, so writing a line is a walk over
/// the parts with no string scanning.
public struct LogFormat: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case literal(String)
        case variable(String)
    }

    public let parts: [Part]

    /// Variables with fixed names; `http_*`, `arg_*`, `cookie_*` and `uri_param_*` are accepted
    /// by prefix.
    public static let knownVariables: Set<String> = [
        // nginx
        "remote_addr", "remote_user", "remote_port", "time_local", "time_iso8601", "msec", "http_host", "host",
        "request_line", "request", "request_method", "request_uri", "uri", "args", "query_string", "status",
        "body_bytes_sent", "bytes_sent", "request_length", "request_time", "http_referer", "http_user_agent",
        "upstream_addr", "upstream_status", "upstream_response_time", "upstream_scheme", "upstream_host",
        "upstream_uri", "scheme", "server_protocol",
        // APISIX
        "apisix_request_id", "route_id", "route_name", "service_id", "consumer_name", "consumer_group_id",
        "apisix_upstream_response_time",
        // LLM
        "request_type", "request_llm_model", "llm_model", "llm_response_model", "llm_time_to_first_token",
        "llm_prompt_tokens",
        "llm_completion_tokens", "llm_total_tokens", "llm_cache_read_input_tokens",
        "llm_cache_creation_input_tokens", "llm_reasoning_tokens", "llm_stream", "llm_has_tool_calls",
        "llm_tool_count", "llm_end_user_id", "llm_content_risk_level", "rate_limiting_info", "llm_error_class",
    ]

    public struct UnknownVariable: Error, Sendable, CustomStringConvertible {
        public var name: String
        public var description: String { "unknown variable $\(name) in access log format" }
    }

    public static func isKnown(_ name: String) -> Bool {
        knownVariables.contains(name) || name.hasPrefix("http_") || name.hasPrefix("arg_")
            || name.hasPrefix("cookie_") || name.hasPrefix("uri_param_")
    }

    public init(_ format: String) throws(UnknownVariable) {
        var parts: [Part] = []
        var literal = ""
        let chars = Array(format)
        var i = 0
        func isNameChar(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || c == "_") }
        while i < chars.count {
            let c = chars[i]
            guard c == "$", i + 1 < chars.count else {
                literal.append(c)
                i += 1
                continue
            }
            var name = ""
            var j = i + 1
            if chars[j] == "{" {
                j += 1
                while j < chars.count, chars[j] != "}" {
                    name.append(chars[j])
                    j += 1
                }
                j += 1
            } else {
                while j < chars.count, isNameChar(chars[j]) {
                    name.append(chars[j])
                    j += 1
                }
            }
            if name.isEmpty {
                literal.append(c)
                i += 1
                continue
            }
            guard Self.isKnown(name) else { throw UnknownVariable(name: name) }
            if !literal.isEmpty {
                parts.append(.literal(literal))
                literal = ""
            }
            parts.append(.variable(name))
            i = j
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }
}

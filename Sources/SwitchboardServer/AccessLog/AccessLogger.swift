import Foundation
import SwitchboardCore

/// Formats one line per request from a compiled ``LogFormat`` and hands it to the writer.
public struct AccessLogger: Sendable {
    public let format: LogFormat
    public let writer: AccessLogWriter
    /// One JSON object per line with every variable, for log shippers.
    public let json: Bool

    /// A format part resolved once: request variables are parsed here, not per request.
    enum CompiledPart: Sendable {
        case literal([UInt8])
        case named(String)
        case request(RequestVariable, name: String)
    }

    let parts: [CompiledPart]

    /// Variables the logger answers itself (the rest are request or plugin variables).
    static let ownVariables: Set<String> = [
        "remote_addr", "remote_port", "remote_user", "time_local", "time_iso8601", "msec", "http_host", "host",
        "request_line", "request", "request_method", "request_uri", "uri", "args", "query_string", "status",
        "body_bytes_sent", "bytes_sent", "request_length", "request_time", "http_referer", "http_user_agent",
        "upstream_addr", "upstream_status", "upstream_response_time", "apisix_upstream_response_time", "scheme",
        "server_protocol",
    ]

    public init(format: LogFormat, writer: AccessLogWriter, json: Bool = false) {
        self.format = format
        self.writer = writer
        self.json = json
        self.parts = format.parts.map { part in
            switch part {
            case .literal(let text): return .literal(Array(text.utf8))
            case .variable(let name):
                return Self.ownVariables.contains(name)
                    ? .named(name) : .request(RequestVariable(name: name), name: name)
            }
        }
    }

    /// The variables of a JSON line, in this order.
    static let jsonVariables = [
        "remote_addr", "remote_user", "time_iso8601", "msec", "request_method", "request_uri", "uri", "args", "host",
        "http_host", "status", "body_bytes_sent", "request_length", "request_time", "http_referer", "http_user_agent",
        "upstream_addr", "upstream_status", "upstream_response_time", "upstream_scheme", "upstream_host",
        "upstream_uri", "apisix_request_id", "route_id", "route_name", "service_id", "consumer_name",
        "apisix_upstream_response_time", "request_type", "request_llm_model", "llm_model", "llm_response_model",
        "llm_time_to_first_token",
        "llm_prompt_tokens", "llm_completion_tokens", "llm_total_tokens", "llm_cache_read_input_tokens",
        "llm_cache_creation_input_tokens", "llm_reasoning_tokens", "llm_stream", "llm_has_tool_calls", "llm_tool_count",
        "llm_end_user_id", "llm_error_class", "rate_limiting_info",
    ]

    func jsonLine(_ exchange: Exchange) -> [UInt8] {
        var object = JSONObject()
        for name in Self.jsonVariables {
            if let value = Self.value(name, exchange), !value.isEmpty { object[name] = .string(value) }
        }
        if let ai = exchange.aiLog {
            if ai.summaries {
                object["llm_summary"] = [
                    "request_model": .string(exchange.logValues["request_llm_model"] ?? ""),
                    "model": .string(exchange.logValues["llm_model"] ?? ""),
                    "duration": .int(Int(exchange.logValues["llm_time_to_first_token"] ?? "") ?? 0),
                    "prompt_tokens": .int(Int(exchange.logValues["llm_prompt_tokens"] ?? "") ?? 0),
                    "completion_tokens": .int(Int(exchange.logValues["llm_completion_tokens"] ?? "") ?? 0),
                    "total_tokens": .int(Int(exchange.logValues["llm_total_tokens"] ?? "") ?? 0),
                    "upstream_response_time": .int(Int(exchange.logValues["apisix_upstream_response_time"] ?? "") ?? 0),
                    "stream": .bool(exchange.logValues["llm_stream"] == "true"),
                    "tool_count": .int(Int(exchange.logValues["llm_tool_count"] ?? "") ?? 0),
                    "has_tool_calls": .bool(exchange.logValues["llm_has_tool_calls"] == "true"),
                    "end_user_id": .string(exchange.logValues["llm_end_user_id"] ?? ""),
                    "cache_read_input_tokens": .int(Int(exchange.logValues["llm_cache_read_input_tokens"] ?? "") ?? 0),
                    "cache_creation_input_tokens": .int(
                        Int(exchange.logValues["llm_cache_creation_input_tokens"] ?? "") ?? 0),
                    "reasoning_tokens": .int(Int(exchange.logValues["llm_reasoning_tokens"] ?? "") ?? 0),
                    "content_risk_level": "",
                ]
            }
            if ai.payloads {
                object["llm_request"] = [
                    "messages": ai.messages, "stream": .bool(exchange.logValues["llm_stream"] == "true"),
                ]
                object["llm_response_text"] = ["content": .string(ai.responseText)]
            }
        }
        var line = JSONValue.object(object).serializedBytes()
        line.append(0x0A)
        return line
    }

    /// Initial values of variables the request did not set (nginx prints `-` for empty).
    static let defaults: [String: String] = [
        "request_type": "traditional_http", "llm_time_to_first_token": "0", "llm_prompt_tokens": "0",
        "llm_completion_tokens": "0", "llm_total_tokens": "0", "llm_cache_read_input_tokens": "0",
        "llm_cache_creation_input_tokens": "0", "llm_reasoning_tokens": "0", "llm_stream": "false",
        "llm_has_tool_calls": "false", "llm_tool_count": "0",
    ]

    public func log(_ exchange: Exchange) {
        if json {
            writer.write(line: jsonLine(exchange))
            return
        }
        var line: [UInt8] = []
        line.reserveCapacity(256)
        for part in parts {
            let value: String?
            switch part {
            case .literal(let bytes):
                line.append(contentsOf: bytes)
                continue
            case .named(let name): value = Self.value(name, exchange)
            case .request(let variable, let name):
                value = Self.loggedValue(of: variable, exchange) ?? exchange.logValues[name] ?? Self.defaults[name]
            }
            if let value, !value.isEmpty {
                Self.appendEscaped(value, to: &line)
            } else {
                line.append(UInt8(ascii: "-"))
            }
        }
        line.append(0x0A)
        writer.write(line: line)
    }

    /// Appends `value` as nginx writes variables: `"`, `\` and bytes outside 0x20–0x7E as
    /// `\xHH`, so no client-chosen value (User-Agent, path, Host) can forge a field or a line.
    static func appendEscaped(_ value: String, to line: inout [UInt8]) {
        for byte in value.utf8 {
            if byte >= 0x20 && byte <= 0x7E && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                line.append(byte)
            } else {
                line.append(contentsOf: [
                    UInt8(ascii: "\\"), UInt8(ascii: "x"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)],
                ])
            }
        }
    }

    private static let hex = Array("0123456789ABCDEF".utf8)

    static func seconds(_ duration: Duration) -> String {
        let ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return String(format: "%.3f", Double(ms) / 1000)
    }

    /// A request variable as logged: redacted query arguments print `***`.
    static func loggedValue(of variable: RequestVariable, _ x: Exchange) -> String? {
        switch variable {
        case .arg(let name) where x.redactedQueryArgs.contains(name):
            return x.args[name] == nil ? nil : "***"
        case .requestURI: return x.loggedURI
        case .queryString: return x.loggedQuery
        default: return x.value(of: variable)?.stringValue
        }
    }

    static func value(_ name: String, _ x: Exchange) -> String? {
        switch name {
        case "remote_addr": return x.remoteAddress
        case "remote_port": return String(x.remotePort)
        case "remote_user": return nil
        case "time_local": return Self.localTime(x.startDate)
        case "time_iso8601": return Self.isoTime(x.startDate)
        case "msec": return String(format: "%.3f", x.startDate.timeIntervalSince1970)
        case "http_host": return x.hostHeader
        case "host": return x.host
        case "request_line", "request": return "\(x.method) \(x.loggedURI) HTTP/1.1"
        case "request_method": return x.method
        case "request_uri": return x.loggedURI
        case "uri": return x.path
        case "args", "query_string": return x.loggedQuery
        case "status": return String(x.status)
        case "body_bytes_sent", "bytes_sent": return String(x.bodyBytesSent)
        case "request_length": return x.request.headers[.contentLength]
        case "request_time": return seconds(x.elapsed)
        case "http_referer": return x.request.headers[.referer]
        case "http_user_agent": return x.request.headers[.userAgent]
        case "upstream_addr": return x.upstreamAddr
        case "upstream_status": return x.upstreamStatus.map(String.init)
        case "upstream_response_time": return x.upstreamResponseTime.map(seconds)
        case "apisix_upstream_response_time":
            return x.logValues[name] ?? x.upstreamResponseTime.map(seconds)
        case "scheme": return x.isTLS ? "https" : "http"
        case "server_protocol": return "HTTP/1.1"
        default:
            if let value = loggedValue(of: RequestVariable(name: name), x) ?? x.logValues[name] {
                return value
            }
            return defaults[name]
        }
    }

    private static let localFormatter: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "dd/MMM/yyyy:HH:mm:ss Z"
        return f
    }()

    private static func localTime(_ date: Date) -> String {
        localFormatter.string(from: date)
    }

    private static func isoTime(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}

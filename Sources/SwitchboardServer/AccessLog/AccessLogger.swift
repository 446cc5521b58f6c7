import Foundation
import SwitchboardCore

/// Formats one line per request from a compiled ``LogFormat`` and hands it to the writer.
public struct AccessLogger: Sendable {
    public let format: LogFormat
    public let writer: AccessLogWriter

    public init(format: LogFormat, writer: AccessLogWriter) {
        self.format = format
        self.writer = writer
    }

    /// Initial values of variables the request did not set (nginx prints `-` for empty).
    static let defaults: [String: String] = [
        "request_type": "traditional_http", "llm_time_to_first_token": "0", "llm_prompt_tokens": "0",
        "llm_completion_tokens": "0", "llm_total_tokens": "0", "llm_cache_read_input_tokens": "0",
        "llm_cache_creation_input_tokens": "0", "llm_reasoning_tokens": "0", "llm_stream": "false",
        "llm_has_tool_calls": "false", "llm_tool_count": "0",
    ]

    public func log(_ exchange: Exchange) {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        for part in format.parts {
            switch part {
            case .literal(let text): line.append(contentsOf: text.utf8)
            case .variable(let name):
                let value = Self.value(name, exchange)
                if let value, !value.isEmpty {
                    line.append(contentsOf: value.utf8)
                } else {
                    line.append(UInt8(ascii: "-"))
                }
            }
        }
        line.append(0x0A)
        writer.write(line: line)
    }

    static func seconds(_ duration: Duration) -> String {
        let ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return String(format: "%.3f", Double(ms) / 1000)
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
        case "request_line", "request":
            let uri = x.rawQuery.map { "\(x.path)?\($0)" } ?? x.path
            return "\(x.method) \(uri) HTTP/1.1"
        case "request_method": return x.method
        case "request_uri": return x.rawQuery.map { "\(x.path)?\($0)" } ?? x.path
        case "uri": return x.path
        case "args", "query_string": return x.rawQuery
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
        case "scheme": return "http"
        case "server_protocol": return "HTTP/1.1"
        default:
            if let value = x.value(of: RequestVariable(name: name))?.stringValue ?? x.logValues[name] {
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

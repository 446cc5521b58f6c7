import Foundation

/// `checks` of an AI instance: APISIX's active checker, plus Switchboard's passive checks on
/// live traffic. Defaults are APISIX's (lua-resty-healthcheck).
public struct HealthCheckConfig: Sendable, Equatable {
    public struct Active: Sendable, Equatable {
        public enum Kind: String, Sendable { case http, https, tcp }
        public var kind: Kind = .http
        public var timeout: Double = 1
        public var concurrency = 10
        public var host: String?
        public var port: Int?
        public var method = "GET"
        public var path = "/"
        public var body = ""
        public var verifyCertificate = true
        public var headers: [(String, String)] = []
        public var healthyInterval = 1
        public var healthyStatuses: Set<Int> = [200, 302]
        public var successes = 2
        public var unhealthyInterval = 1
        public var unhealthyStatuses: Set<Int> = [429, 404, 500, 501, 502, 503, 504, 505]
        public var httpFailures = 5
        public var tcpFailures = 2
        public var timeouts = 3

        public static func == (a: Active, b: Active) -> Bool {
            a.kind == b.kind && a.timeout == b.timeout && a.host == b.host && a.port == b.port && a.method == b.method
                && a.path == b.path && a.body == b.body && a.verifyCertificate == b.verifyCertificate
                && a.headers.map { "\($0.0):\($0.1)" } == b.headers.map { "\($0.0):\($0.1)" }
                && a.healthyInterval == b.healthyInterval && a.healthyStatuses == b.healthyStatuses
                && a.successes == b.successes && a.unhealthyInterval == b.unhealthyInterval
                && a.unhealthyStatuses == b.unhealthyStatuses && a.httpFailures == b.httpFailures
                && a.tcpFailures == b.tcpFailures && a.timeouts == b.timeouts
        }
    }

    public struct Passive: Sendable, Equatable {
        public var healthyStatuses = Set(200...399)
        public var successes = 5
        public var unhealthyStatuses: Set<Int> = [429, 500, 503]
        public var httpFailures = 5
        public var tcpFailures = 2
        public var timeouts = 7
        /// Seconds an ejected instance rests before a half-open trial (when no active check runs).
        public var cooldown: Double = 10

        public init() {}
    }

    public var active: Active?
    public var passive: Passive?

    public init(active: Active? = nil, passive: Passive? = nil) {
        self.active = active
        self.passive = passive
    }

    /// From a validated `checks` object.
    public init?(_ json: JSONValue?) {
        guard let json, case .object = json else { return nil }
        let statuses: (JSONValue?) -> Set<Int>? = { value in
            value?.arrayValue.map { Set($0.compactMap(\.intValue)) }
        }
        if let a = json["active"] {
            var active = Active()
            active.kind = Active.Kind(rawValue: a["type"]?.stringValue ?? "http") ?? .http
            // Times are bounded here, so no configured value can overflow a conversion later.
            active.timeout = min(max(a["timeout"]?.doubleValue ?? 1, 0.001), 3600)
            active.concurrency = a["concurrency"]?.intValue ?? 10
            active.host = a["host"]?.stringValue
            active.port = a["port"]?.intValue
            active.method = a["http_method"]?.stringValue ?? "GET"
            active.path = a["http_path"]?.stringValue ?? "/"
            active.body = a["http_req_body"]?.stringValue ?? ""
            active.verifyCertificate = a["https_verify_certificate"]?.boolValue ?? true
            active.headers = (a["req_headers"]?.arrayValue ?? []).compactMap { line in
                guard let text = line.stringValue, let colon = text.firstIndex(of: ":") else { return nil }
                return (
                    String(text[..<colon]).trimmingCharacters(in: .whitespaces),
                    String(text[text.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                )
            }
            let h = a["healthy"]
            active.healthyInterval = min(max(h?["interval"]?.intValue ?? 1, 1), 86_400)
            active.healthyStatuses = statuses(h?["http_statuses"]) ?? active.healthyStatuses
            active.successes = h?["successes"]?.intValue ?? 2
            let u = a["unhealthy"]
            active.unhealthyInterval = min(max(u?["interval"]?.intValue ?? 1, 1), 86_400)
            active.unhealthyStatuses = statuses(u?["http_statuses"]) ?? active.unhealthyStatuses
            active.httpFailures = u?["http_failures"]?.intValue ?? 5
            active.tcpFailures = u?["tcp_failures"]?.intValue ?? 2
            active.timeouts = u?["timeouts"]?.intValue ?? 3
            self.active = active
        }
        if let p = json["passive"] {
            var passive = Passive()
            passive.healthyStatuses = statuses(p["healthy"]?["http_statuses"]) ?? passive.healthyStatuses
            passive.successes = p["healthy"]?["successes"]?.intValue ?? 5
            passive.unhealthyStatuses = statuses(p["unhealthy"]?["http_statuses"]) ?? passive.unhealthyStatuses
            passive.httpFailures = p["unhealthy"]?["http_failures"]?.intValue ?? 5
            passive.tcpFailures = p["unhealthy"]?["tcp_failures"]?.intValue ?? 2
            passive.timeouts = p["unhealthy"]?["timeouts"]?.intValue ?? 7
            passive.cooldown = min(max(p["cooldown"]?.doubleValue ?? 10, 0), 86_400)
            self.passive = passive
        }
    }

    static let statusList = Schema(
        type: .array, items: Schema(type: .integer, minimum: 200, maximum: 599), minItems: 1, uniqueItems: true)
    static let count = Schema(type: .integer, minimum: 1, maximum: 254)

    /// The `checks` schema: APISIX's `health_checker_active` plus the upstream passive schema.
    public static let schema = Schema(
        type: .object,
        properties: [
            "active": Schema(
                type: .object,
                properties: [
                    "type": Schema(type: .string, enum: ["http", "https", "tcp"], default: "http"),
                    "timeout": Schema(type: .number, default: 1),
                    "concurrency": Schema(type: .integer, default: 10),
                    "host": Schema(type: .string, pattern: "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$"),
                    "port": Schema(type: .integer, minimum: 1, maximum: 65535),
                    "http_method": Schema(
                        type: .string,
                        enum: [
                            "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PURGE",
                        ],
                        default: "GET"),
                    "http_path": Schema(type: .string, default: "/"),
                    "http_req_body": Schema(type: .string),
                    "https_verify_certificate": Schema(type: .boolean, default: true),
                    "req_headers": Schema(type: .array, items: Schema(type: .string), uniqueItems: true),
                    "healthy": Schema(
                        type: .object,
                        properties: [
                            "interval": Schema(type: .integer, minimum: 1, default: 1),
                            "http_statuses": statusList, "successes": count,
                        ]),
                    "unhealthy": Schema(
                        type: .object,
                        properties: [
                            "interval": Schema(type: .integer, minimum: 1, default: 1),
                            "http_statuses": statusList, "http_failures": count, "tcp_failures": count,
                            "timeouts": count,
                        ]),
                ]),
            "passive": Schema(
                type: .object,
                properties: [
                    "type": Schema(type: .string, enum: ["http", "https", "tcp"], default: "http"),
                    "healthy": Schema(type: .object, properties: ["http_statuses": statusList, "successes": count]),
                    "unhealthy": Schema(
                        type: .object,
                        properties: [
                            "http_statuses": statusList, "http_failures": count, "tcp_failures": count,
                            "timeouts": count,
                        ]),
                    "cooldown": Schema(type: .number, exclusiveMinimum: 0, default: 10),
                ]),
        ],
        anyOf: [Schema(required: ["active"]), Schema(required: ["passive"])])
}

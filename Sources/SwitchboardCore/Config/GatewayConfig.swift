import Foundation
import Yams

/// The gateway's own configuration file (YAML). Every key is optional; the defaults run a
/// gateway on a laptop: proxy on `0.0.0.0:9080`, Admin API on loopback, SQLite store.
public struct GatewayConfig: Sendable, Equatable {
    public struct AdminKey: Sendable, Equatable {
        public enum Role: String, Sendable { case admin, viewer }
        public var name: String
        public var key: String
        public var role: Role

        public init(name: String, key: String, role: Role) {
            self.name = name
            self.key = key
            self.role = role
        }
    }

    public enum StoreLocation: Sendable, Equatable {
        case sqlite(path: String)
        case file(path: String)
        /// A cluster: every node shares the configuration (and `policy: cluster` quotas) there.
        case postgres(PostgresDSN)

        public init?(_ text: String) {
            if text.hasPrefix("sqlite:") {
                let path = String(text.dropFirst("sqlite:".count))
                guard !path.isEmpty else { return nil }
                self = .sqlite(path: path.hasPrefix("//") ? String(path.dropFirst(2)) : path)
            } else if text.hasPrefix("file:") {
                let path = String(text.dropFirst("file:".count))
                guard !path.isEmpty else { return nil }
                self = .file(path: path.hasPrefix("//") ? String(path.dropFirst(2)) : path)
            } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://"),
                let dsn = try? PostgresDSN(text)
            {
                self = .postgres(dsn)
            } else {
                return nil
            }
        }
    }

    public enum AccessLogTarget: Sendable, Equatable {
        case off
        case stdout
        case file(String)
    }

    public static let defaultAccessLogFormat =
        "$remote_addr - $remote_user [$time_local] $http_host \"$request_line\" $status $body_bytes_sent $request_time"

    public var proxyListen: [ListenAddress] = [ListenAddress(host: "0.0.0.0", port: 9080)]
    /// Largest request body the data plane reads (bytes).
    public var proxyMaxBodySize = 64 * 1024 * 1024
    /// The largest body read before a route is chosen and its client authenticated (only when
    /// a route that could match reads `post_arg.*` in its `vars`).
    public var proxyMaxBodySizeBeforeAuth = 1024 * 1024
    /// Limits for hostile or broken clients on the proxy listeners (see ``ClientLimits``).
    public var clientLimits = ClientLimits()
    /// `shutdown.drain_timeout_ms`: how long in-flight requests and streams may run on after
    /// SIGTERM/SIGINT before open streams are ended with an in-band error.
    public var drainTimeoutMs = 30_000
    public var adminListen = ListenAddress(host: "127.0.0.1", port: 9180)
    public var adminKeys: [AdminKey] = []
    /// The control API (health of instances); `nil` turns it off.
    public var controlListen: ListenAddress? = ListenAddress(host: "127.0.0.1", port: 9090)
    /// The Prometheus exposition; `nil` turns it off.
    public var prometheusListen: ListenAddress? = ListenAddress(host: "127.0.0.1", port: 9091)
    public var prometheusPath = "/apisix/prometheus/metrics"
    /// One JSON object per access log line instead of the format string.
    public var accessLogJSON = false
    /// Bytes of access log lines held while the disk is slow; beyond that, lines are dropped.
    public var accessLogBufferSize = 8 * 1024 * 1024
    public var store: StoreLocation = .sqlite(path: "./switchboard.db")
    public var accessLog: AccessLogTarget = .stdout
    public var accessLogFormat = GatewayConfig.defaultAccessLogFormat
    /// `data_encryption.keyring`: AES keys (16 or 32 bytes); the first encrypts secret fields
    /// at rest, every one decrypts. Empty: secrets are stored as written.
    public var dataEncryptionKeys: [[UInt8]] = []
    /// `dashboard.trace_size`: how many finished requests the dashboard's trace keeps.
    public var traceCapacity = 1000
    /// Environment variables this file reads (`${NAME}`): the keyring, admin keys, the database
    /// password. A `$env://` reference in plugin configuration can never read them, so a
    /// configuration writer cannot have a route echo them.
    public var environmentNames: Set<String> = []

    public init() {}

    /// A config problem, worded as one line for the terminal.
    public struct Error: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    static let schema: Schema = {
        let listen = Schema(types: [.string, .integer])
        let proxyListen = Schema(anyOf: [
            listen,
            Schema(
                type: .object, properties: ["listen": listen, "tls": Schema(type: .boolean)], required: ["listen"],
                additionalProperties: .forbidden),
        ])
        return Schema(
            type: .object,
            properties: [
                "proxy": Schema(
                    type: .object,
                    properties: [
                        "listen": Schema(anyOf: [proxyListen, Schema(type: .array, items: proxyListen, minItems: 1)]),
                        "max_body_size": Schema(type: .integer, minimum: 1),
                        "max_body_size_before_auth": Schema(type: .integer, minimum: 1),
                        "max_connections": Schema(type: .integer, minimum: 1, maximum: 10_000_000),
                        "header_timeout_ms": Schema(type: .integer, minimum: 1, maximum: 3_600_000),
                        "body_timeout_ms": Schema(type: .integer, minimum: 1, maximum: 3_600_000),
                        "max_header_bytes": Schema(type: .integer, minimum: 1024, maximum: 16_777_216),
                        "max_headers": Schema(type: .integer, minimum: 8, maximum: 65_534),
                    ],
                    additionalProperties: .forbidden),
                "admin": Schema(
                    type: .object,
                    properties: [
                        "listen": listen,
                        "keys": Schema(
                            type: .array,
                            items: Schema(
                                type: .object,
                                properties: [
                                    "name": Schema(type: .string),
                                    "key": Schema(type: .string),
                                    "role": Schema(type: .string, enum: ["admin", "viewer"], default: "admin"),
                                ],
                                required: ["key"],
                                additionalProperties: .forbidden)),
                    ],
                    additionalProperties: .forbidden),
                "store": Schema(type: .string),
                "shutdown": Schema(
                    type: .object,
                    properties: ["drain_timeout_ms": Schema(type: .integer, minimum: 0, maximum: 86_400_000)],
                    additionalProperties: .forbidden),
                "dashboard": Schema(
                    type: .object,
                    properties: ["trace_size": Schema(type: .integer, minimum: 0, maximum: 100_000)],
                    additionalProperties: .forbidden),
                "data_encryption": Schema(
                    type: .object,
                    properties: [
                        // No pattern: its error message would echo the key.
                        "keyring": Schema(type: .array, items: Schema(type: .string))
                    ],
                    additionalProperties: .forbidden),
                "prometheus": Schema(
                    type: .object,
                    properties: [
                        "listen": listen, "path": Schema(type: .string, pattern: "^/"),
                        "enabled": Schema(type: .boolean),
                    ],
                    additionalProperties: .forbidden),
                "control": Schema(
                    type: .object,
                    properties: ["listen": listen, "enabled": Schema(type: .boolean)],
                    additionalProperties: .forbidden),
                "access_log": Schema(
                    type: .object,
                    properties: [
                        "path": Schema(type: .string),
                        "format": Schema(type: .string, minLength: 1),
                        "json": Schema(type: .boolean),
                        "buffer_size": Schema(type: .integer, minimum: 4096, maximum: 1_073_741_824),
                    ],
                    additionalProperties: .forbidden),
            ],
            additionalProperties: .forbidden)
    }()

    /// Reads a config file; `environment` expands `${VAR}` and `${VAR:-default}` in values.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(Error) -> GatewayConfig
    {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Error("cannot read config file \(path)")
        }
        return try parse(String(decoding: data, as: UTF8.self), source: path, environment: environment)
    }

    public static func parse(_ text: String, source: String = "config", environment: [String: String] = [:])
        throws(Error) -> GatewayConfig
    {
        let document: JSONValue
        do {
            document = try YAMLDocument.parse(text, environment: environment) ?? .object([:])
        } catch let error as Error {
            throw Error("\(source): \(error.message)")
        } catch {
            throw Error("\(source): invalid YAML: \(error)")
        }
        let value: JSONValue
        do {
            value = try schema.validate(document)
        } catch {
            throw Error("\(source): \(error.message)")
        }
        var config = GatewayConfig()
        config.environmentNames = referencedVariables(text)
        if let proxy = value["proxy"] {
            if let listen = proxy["listen"] {
                let list = listen.arrayValue ?? [listen]
                config.proxyListen = try list.map { (v) throws(Error) in
                    guard let inner = v["listen"] else { return try parseListen(v, "proxy.listen", source) }
                    var address = try parseListen(inner, "proxy.listen", source)
                    address.tls = v["tls"]?.boolValue ?? false
                    return address
                }
            }
            if let max = proxy["max_body_size"]?.intValue { config.proxyMaxBodySize = max }
            if let max = proxy["max_body_size_before_auth"]?.intValue { config.proxyMaxBodySizeBeforeAuth = max }
            if let max = proxy["max_connections"]?.intValue { config.clientLimits.maxConnections = max }
            if let ms = proxy["header_timeout_ms"]?.intValue { config.clientLimits.headerTimeoutMs = ms }
            if let ms = proxy["body_timeout_ms"]?.intValue { config.clientLimits.bodyTimeoutMs = ms }
            if let max = proxy["max_header_bytes"]?.intValue { config.clientLimits.maxHeaderBytes = max }
            if let max = proxy["max_headers"]?.intValue { config.clientLimits.maxHeaders = max }
        }
        if let admin = value["admin"] {
            if let listen = admin["listen"] { config.adminListen = try parseListen(listen, "admin.listen", source) }
            for (i, entry) in (admin["keys"]?.arrayValue ?? []).enumerated() {
                let key = entry["key"]?.stringValue ?? ""
                guard !key.isEmpty else {
                    throw Error("\(source): admin.keys[\(i)].key is empty (is the environment variable it names set?)")
                }
                let role = AdminKey.Role(rawValue: entry["role"]?.stringValue ?? "admin") ?? .admin
                config.adminKeys.append(AdminKey(name: entry["name"]?.stringValue ?? "key\(i)", key: key, role: role))
            }
        }
        if let prometheus = value["prometheus"] {
            if let listen = prometheus["listen"] {
                config.prometheusListen = try parseListen(listen, "prometheus.listen", source)
            }
            if let path = prometheus["path"]?.stringValue { config.prometheusPath = path }
            if prometheus["enabled"]?.boolValue == false { config.prometheusListen = nil }
        }
        if let control = value["control"] {
            if let listen = control["listen"] {
                config.controlListen = try parseListen(listen, "control.listen", source)
            }
            if control["enabled"]?.boolValue == false { config.controlListen = nil }
        }
        if let store = value["store"]?.stringValue {
            if store.hasPrefix("postgres://") || store.hasPrefix("postgresql://") {
                do { config.store = .postgres(try PostgresDSN(store)) } catch {
                    throw Error("\(source): store: \(error)")
                }
            } else if let location = StoreLocation(store) {
                config.store = location
            } else {
                // A mistyped scheme may still carry a password: never echo what follows `//`.
                let shown = store.contains("@") ? String(store.prefix { $0 != ":" }) + ":..." : store
                throw Error("\(source): store \"\(shown)\" is not sqlite:PATH, file:PATH or postgres://...")
            }
        }
        if let size = value["dashboard"]?["trace_size"]?.intValue { config.traceCapacity = size }
        if let ms = value["shutdown"]?["drain_timeout_ms"]?.intValue { config.drainTimeoutMs = ms }
        for (i, hex) in (value["data_encryption"]?["keyring"]?.arrayValue ?? []).enumerated() {
            guard let text = hex.stringValue, let key = hexBytes(text), key.count == 16 || key.count == 32 else {
                throw Error("\(source): data_encryption.keyring[\(i)] is not 32 or 64 hexadecimal characters")
            }
            config.dataEncryptionKeys.append(key)
        }
        if let log = value["access_log"] {
            if let path = log["path"]?.stringValue {
                switch path {
                case "off": config.accessLog = .off
                case "-", "": config.accessLog = .stdout
                default: config.accessLog = .file(path)
                }
            }
            if let format = log["format"]?.stringValue { config.accessLogFormat = format }
            if let json = log["json"]?.boolValue { config.accessLogJSON = json }
            if let size = log["buffer_size"]?.intValue { config.accessLogBufferSize = size }
        }
        return config
    }

    /// The names in `${NAME}` and `${NAME:-default}` of `text`.
    public static func referencedVariables(_ text: String) -> Set<String> {
        var names = Set<String>()
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            let name = rest[start.upperBound...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            if !name.isEmpty { names.insert(String(name)) }
            rest = rest[start.upperBound...]
        }
        return names
    }

    /// Bytes of an even-length hexadecimal string.
    public static func hexBytes(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let high = hexDigit(digits[i]), let low = hexDigit(digits[i + 1]) else { return nil }
            bytes.append(high << 4 | low)
            i += 2
        }
        return bytes
    }

    private static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func parseListen(_ value: JSONValue, _ field: String, _ source: String) throws(Error)
        -> ListenAddress
    {
        let text = value.stringValue ?? value.intValue.map(String.init) ?? ""
        guard let address = ListenAddress(text) else {
            throw Error("\(source): \(field) \"\(text)\" is not a valid host:port")
        }
        return address
    }
}

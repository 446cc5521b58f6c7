import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SwitchboardCore
import SwitchboardServer
import Testing

/// An access log a test reads: in `directory/access.log`, with `format` (or the default),
/// as text or JSON lines.
struct TestAccessLog: Sendable {
    var format: String?
    var json = false

    static func text(_ format: String) -> TestAccessLog { TestAccessLog(format: format) }
    static let json = TestAccessLog(format: nil, json: true)
}

/// A gateway running inside the test process on loopback ports chosen by the kernel, with its
/// own temporary directory for the store and logs.
final class TestGateway: @unchecked Sendable {
    static let adminKey = "test-admin-key"
    static let viewerKey = "test-viewer-key"

    let gateway: Gateway
    let directory: URL

    /// The store as the gateway names it in messages (the default SQLite file).
    var storeLocation: String { "sqlite:" + directory.appendingPathComponent("switchboard.db").path }
    private let task: Task<Void, any Error>

    static func makeDirectory() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-test-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Starts a gateway. `configure` may change the config (store, limits, log) before start.
    static func start(
        directory: URL? = nil, accessLog: TestAccessLog? = nil,
        configure: (inout GatewayConfig, URL) -> Void = { _, _ in }
    ) async throws -> TestGateway {
        let directory = directory ?? makeDirectory()
        var config = GatewayConfig()
        config.proxyListen = [ListenAddress(host: "127.0.0.1", port: 0)]
        config.adminListen = ListenAddress(host: "127.0.0.1", port: 0)
        config.controlListen = ListenAddress(host: "127.0.0.1", port: 0)
        config.prometheusListen = ListenAddress(host: "127.0.0.1", port: 0)
        config.adminKeys = [
            .init(name: "admin", key: adminKey, role: .admin), .init(name: "viewer", key: viewerKey, role: .viewer),
        ]
        config.store = .sqlite(path: directory.appendingPathComponent("switchboard.db").path)
        config.accessLog = .off
        if let accessLog {
            config.accessLog = .file(directory.appendingPathComponent("access.log").path)
            if let format = accessLog.format { config.accessLogFormat = format }
            config.accessLogJSON = accessLog.json
        }
        configure(&config, directory)
        var logger = Logger(label: "test-gateway")
        logger.logLevel = .warning
        let gateway = try await Gateway.prepare(config: config, logger: logger)
        let task = Task { try await gateway.run(gracefulShutdownSignals: []) }
        await gateway.waitUntilReady()
        return TestGateway(gateway: gateway, directory: directory, task: task)
    }

    private init(gateway: Gateway, directory: URL, task: Task<Void, any Error>) {
        self.gateway = gateway
        self.directory = directory
        self.task = task
    }

    /// The bound port of listener `name`; a listener that never bound fails the test, not the
    /// test process.
    func port(_ name: String) throws -> Int { try #require(gateway.port(name), "listener \(name) is not bound") }

    // Port 0 (connection refused: the request fails with an error) for a listener that never bound.
    var proxyBase: String { "http://127.0.0.1:\(gateway.port("proxy0") ?? 0)" }
    var adminBase: String { "http://127.0.0.1:\(gateway.port("admin") ?? 0)" }
    var metricsURL: String { "http://127.0.0.1:\(gateway.port("prometheus") ?? 0)/apisix/prometheus/metrics" }
    var controlBase: String { "http://127.0.0.1:\(gateway.port("control") ?? 0)" }

    func stop() async {
        await gateway.stop()
        _ = try? await task.value
    }

    /// Calls the Admin API; the body is sent as given (no Content-Type, like the docs' curl).
    func admin(
        _ method: HTTPMethod, _ path: String, _ body: String? = nil, key: String? = TestGateway.adminKey
    ) async throws -> HTTPResult {
        var headers: [(String, String)] = []
        if let key { headers.append(("X-API-KEY", key)) }
        return try await HTTP.send(method, adminBase + "/apisix/admin" + path, body: body, headers: headers)
    }

    /// Why the Admin API refuses an `ai-proxy-multi` configuration (its message after APISIX's
    /// "failed to check the configuration of plugin ai-proxy-multi err: "), or `nil` when it
    /// stores it.
    func aiProxyMultiRefusal(_ plugin: String) async throws -> String? {
        let result = try await admin(
            .PUT, "/routes/checked", #"{"uri":"/checked","plugins":{"ai-proxy-multi":\#(plugin)}}"#)
        guard result.status == 400, let message = result.json["error_msg"]?.stringValue else { return nil }
        let prefix = "failed to check the configuration of plugin ai-proxy-multi err: "
        return message.hasPrefix(prefix) ? String(message.dropFirst(prefix.count)) : message
    }

    func proxy(
        _ method: HTTPMethod, _ path: String, body: String? = nil, headers: [(String, String)] = []
    ) async throws -> HTTPResult {
        try await HTTP.send(method, proxyBase + path, body: body, headers: headers)
    }
}

/// A response as a test sees it.
struct HTTPResult: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: String

    var json: JSONValue { (try? JSONParser.parse(body)) ?? .null }
}

enum HTTP {
    /// The body as bytes (a binary stream), with the status and headers.
    static func bytes(
        _ method: HTTPMethod, _ url: String, body: String? = nil, headers: [(String, String)] = []
    ) async throws -> (status: Int, headers: HTTPHeaders, body: [UInt8]) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 * 1024 * 1024)
        return (Int(response.status.code), response.headers, Array(buffer: bytes))
    }

    static func send(
        _ method: HTTPMethod, _ url: String, body: String? = nil, headers: [(String, String)] = []
    ) async throws -> HTTPResult {
        let result = try await bytes(method, url, body: body, headers: headers)
        return HTTPResult(
            status: result.status, headers: result.headers, body: String(decoding: result.body, as: UTF8.self))
    }
}

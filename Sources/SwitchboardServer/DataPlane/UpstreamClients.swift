import AsyncHTTPClient
import NIOCore
import NIOSSL
import Synchronization

/// The pooled HTTP clients for upstream calls, one per profile (read timeout, TLS verification),
/// shared by every route: connections are reused across requests and configuration changes.
/// AsyncHTTPClient's read timeout is per client, which is what APISIX's per-socket-operation
/// `timeout` means, hence one client per distinct timeout.
public final class UpstreamClients: Sendable {
    struct Profile: Hashable {
        var readTimeoutMs: Int
        var verifyTLS: Bool
    }

    private let clients = Mutex<[Profile: HTTPClient]>([:])
    /// Plain-HTTP upstreams of AI routes: the gateway's own pool, per event loop.
    let http1 = UpstreamHTTP1Pool()

    public init() {}

    public func client(readTimeoutMs: Int = 60000, verifyTLS: Bool = true) -> HTTPClient {
        let profile = Profile(readTimeoutMs: readTimeoutMs, verifyTLS: verifyTLS)
        return clients.withLock { clients in
            if let existing = clients[profile] { return existing }
            let client = Self.make(profile)
            clients[profile] = client
            return client
        }
    }

    static func make(_ profile: Profile) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        configuration.timeout = .init(
            connect: .milliseconds(Int64(min(profile.readTimeoutMs, 10000))),
            read: .milliseconds(Int64(profile.readTimeoutMs)))
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 16384)
        // A refused connection must fail the request now (502, or fall over to another
        // instance), not be retried silently until the connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        // No spans: the default (no-op) tracer still cost ~3 % of a request in attributes.
        configuration.tracing.tracer = nil
        var tls = TLSConfiguration.makeClientConfiguration()
        if !profile.verifyTLS { tls.certificateVerification = .none }
        configuration.tlsConfiguration = tls
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Whether a failed upstream call timed out (504) rather than failed to connect or broke (502).
    public static func isTimeout(_ error: any Error) -> Bool {
        if let clientError = error as? HTTPClientError,
            clientError == .readTimeout || clientError == .deadlineExceeded || clientError == .connectTimeout
        {
            return true
        }
        let text = "\(error)".lowercased()
        return text.contains("timeout") || text.contains("timed out")
    }

    public func shutdown() async {
        http1.closeAll()
        let all = clients.withLock { clients in
            defer { clients = [:] }
            return Array(clients.values)
        }
        for client in all { try? await client.shutdown() }
    }
}

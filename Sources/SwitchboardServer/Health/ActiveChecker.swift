import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SwitchboardCore

/// Probes one instance on its own timer: every `healthy.interval` seconds while healthy, every
/// `unhealthy.interval` while not. An http(s) probe is a request to `http_path` (plus the
/// instance's `auth.query`, with `req_headers` plus its `auth.header`); a tcp probe connects.
/// Probes should target an endpoint that costs nothing, e.g. `GET /v1/models`: the gateway
/// never sends a completion unless the configuration says so.
struct ActiveChecker: Sendable {
    let health: InstanceHealth
    let clients: UpstreamClients

    func run() async {
        while !Task.isCancelled {
            await probe()
            do { try await Task.sleep(for: .milliseconds(Int(health.probeInterval() * 1000))) } catch { return }
        }
    }

    func probe() async {
        guard let active = health.config?.active else { return }
        let port = active.port ?? health.port
        if active.kind == .tcp {
            await tcpProbe(port: port, timeout: active.timeout)
            return
        }
        let scheme = active.kind == .https ? "https" : "http"
        var request = HTTPClientRequest(url: "\(scheme)://\(Self.bracket(health.host)):\(port)\(active.path)")
        request.method = HTTPMethod(rawValue: active.method)
        for (name, value) in active.headers { request.headers.add(name: name, value: value) }
        request.headers.replaceOrAdd(name: "host", value: active.host ?? health.host)
        if !active.body.isEmpty { request.body = .bytes(ByteBuffer(string: active.body)) }
        let client = clients.client(
            readTimeoutMs: max(1, Int(active.timeout * 1000)), verifyTLS: active.verifyCertificate)
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(active.timeout * 1000)))
            _ = try? await response.body.collect(upTo: 1 << 20)
            let status = Int(response.status.code)
            if active.healthyStatuses.contains(status) {
                health.reportProbe(success: true, failure: .http, result: "http \(status)")
            } else if active.unhealthyStatuses.contains(status) {
                health.reportProbe(success: false, failure: .http, result: "http \(status)")
            }
        } catch is CancellationError {
            return
        } catch {
            let timeout = UpstreamClients.isTimeout(error)
            health.reportProbe(success: false, failure: timeout ? .timeout : .tcp, result: "\(error)")
        }
    }

    private func tcpProbe(port: Int, timeout: Double) async {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.milliseconds(Int64(timeout * 1000)))
        do {
            let channel = try await bootstrap.connect(host: health.host, port: port).get()
            try? await channel.close()
            health.reportProbe(success: true, failure: .tcp, result: "tcp connect ok")
        } catch {
            let timedOut: Bool
            if case .connectTimeout? = error as? ChannelError { timedOut = true } else { timedOut = false }
            health.reportProbe(success: false, failure: timedOut ? .timeout : .tcp, result: "\(error)")
        }
    }

    static func bracket(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }
}

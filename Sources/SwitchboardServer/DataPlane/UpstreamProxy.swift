import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import SwitchboardCore

/// Proxies plain HTTP to a route's upstream: picks a node by weighted round robin, forwards the
/// request (streaming the body unless a plugin already read it) and streams the response back
/// chunk by chunk. Upstream calls share one pooled ``HTTPClient``.
public struct UpstreamProxy: Sendable {
    public let clients: UpstreamClients

    public init(clients: UpstreamClients) {
        self.clients = clients
    }

    /// Request headers that describe one hop and are never forwarded.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization", "proxy-authenticate", "host", "content-length",
    ]

    public func forward(_ exchange: Exchange, to upstream: CompiledUpstream) async -> Response {
        guard let node = upstream.pick() else {
            return GatewayResponse.json(.serviceUnavailable, ["error_msg": "no valid upstream node"])
        }
        let query = exchange.upstreamQuery.map { "?\($0)" } ?? ""
        var request = HTTPClientRequest(url: "\(upstream.scheme)://\(node.address)\(exchange.path)\(query)")
        request.method = HTTPMethod(rawValue: exchange.method)
        let listed = exchange.request.headers[.connection] == nil ? [] : exchange.connectionListedHeaders
        for field in exchange.request.headers {
            let lower = field.name.canonicalName
            if Self.hopByHop.contains(lower) || listed.contains(lower) { continue }
            request.headers.add(name: field.name.rawName, value: field.value)
        }
        switch upstream.passHost {
        case .pass: if let host = exchange.hostHeader { request.headers.replaceOrAdd(name: "host", value: host) }
        case .node: request.headers.replaceOrAdd(name: "host", value: node.address)
        case .rewrite:
            request.headers.replaceOrAdd(name: "host", value: upstream.upstreamHost ?? node.address)
        }
        let forwardedFor = exchange.request.headers[.xForwardedFor].map { "\($0), \(exchange.remoteAddress)" }
        request.headers.replaceOrAdd(name: "X-Forwarded-For", value: forwardedFor ?? exchange.remoteAddress)
        request.headers.replaceOrAdd(name: "X-Real-IP", value: exchange.remoteAddress)
        request.headers.replaceOrAdd(name: "X-Forwarded-Proto", value: exchange.isTLS ? "https" : "http")
        if let host = exchange.hostHeader { request.headers.replaceOrAdd(name: "X-Forwarded-Host", value: host) }
        request.headers.replaceOrAdd(name: "X-Request-Id", value: exchange.requestID)
        for (name, value) in exchange.upstreamHeaderEdits {
            if let value {
                request.headers.replaceOrAdd(name: name.rawName, value: value)
            } else {
                request.headers.remove(name: name.rawName)
            }
        }
        if let buffered = exchange.bufferedBody {
            request.body = .bytes(buffered)
        } else if let length = exchange.request.headers[.contentLength].flatMap(Int64.init) {
            if length > 0 { request.body = .stream(exchange.request.body, length: .known(length)) }
        } else if exchange.request.headers[.transferEncoding] != nil {
            request.body = .stream(exchange.request.body, length: .unknown)
        }

        exchange.upstreamAddr = node.address
        let started = ContinuousClock.now
        let response: HTTPClientResponse
        do {
            let client = clients.client(readTimeoutMs: Int(upstream.readTimeout / .milliseconds(1)))
            response = try await client.execute(
                request, timeout: .nanoseconds(Int64(upstream.readTimeout / .nanoseconds(1))))
        } catch {
            exchange.upstreamResponseTime = ContinuousClock.now - started
            return Self.transportFailure(
                error, exchange: exchange, target: node.address,
                readTimeoutMs: Int(upstream.readTimeout / .milliseconds(1)))
        }
        exchange.upstreamStatus = Int(response.status.code)
        exchange.upstreamWait += ContinuousClock.now - started
        var headers = HTTPFields()
        var contentLength: Int?
        for header in response.headers {
            let lower = header.name.lowercased()
            if lower == "content-length" {
                contentLength = Int(header.value)
                continue
            }
            if Self.hopByHop.contains(lower) { continue }
            if let name = HTTPField.Name(header.name) { headers.append(HTTPField(name: name, value: header.value)) }
        }
        let body = response.body
        let status = HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase)
        return Response(
            status: status, headers: headers,
            body: ResponseBody(contentLength: contentLength) { writer in
                defer { exchange.upstreamResponseTime = ContinuousClock.now - started }
                for try await chunk in body {
                    try await writer.write(chunk)
                }
                try await writer.finish(nil)
            })
    }

    /// 502 when the upstream cannot be reached, 504 when it does not answer in time.
    static func transportFailure(_ error: any Error, exchange: Exchange, target: String, readTimeoutMs: Int)
        -> Response
    {
        let isTimeout = UpstreamClients.isTimeout(error)
        exchange.upstreamStatus = isTimeout ? 504 : 502
        let message = UpstreamError.describe(
            error, target: target, stage: .head(waitMs: readTimeoutMs, budgetBound: false))
        return GatewayResponse.json(isTimeout ? .gatewayTimeout : .badGateway, ["error_msg": .string(message)])
    }
}

extension HTTPField.Name {
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}

import AsyncHTTPClient
import NIOCore

extension TestGateway {
    /// POSTs a JSON `body` and returns as soon as the response head arrives, so a test can read
    /// the body chunk by chunk (or walk away from it) while the upstream is still sending.
    func openStream(_ path: String = "/anything", body: String) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: proxyBase + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        return try await HTTPClient.shared.execute(request, timeout: .seconds(30))
    }
}

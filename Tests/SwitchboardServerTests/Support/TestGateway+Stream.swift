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

    /// POSTs `body` and reads the streamed answer, opening `llm`'s gate once `marker` has reached
    /// the client: a fault the fake holds behind its gate (a cut, an error event) then comes
    /// strictly after content the client has seen, whatever the load on the machine.
    func streamOpeningGate(
        of llm: FakeLLM, after marker: String, body: String, path: String = "/anything"
    ) async throws -> HTTPResult {
        let response = try await openStream(path, body: body)
        let text = try await within(30) {
            var received = ""
            var opened = false
            for try await chunk in response.body {
                received += String(buffer: chunk)
                if !opened, received.contains(marker) {
                    llm.openGate()
                    opened = true
                }
            }
            return received
        }
        return HTTPResult(status: Int(response.status.code), headers: response.headers, body: text)
    }
}

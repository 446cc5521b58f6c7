import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOCore
import NIOSSL
import SwitchboardCore
import Synchronization

/// An in-process LLM provider for tests: answers OpenAI-style requests (JSON or SSE), and can
/// fail on demand. Every request is recorded with its path, query, headers and JSON body.
final class FakeLLM: Sendable {
    struct Seen: Sendable {
        var method: String
        var path: String
        var query: String?
        var headers: HTTPFields
        var body: JSONValue
        var rawBody: String
        /// The `Host` the request was sent with (HTTP/1.1's Host becomes the authority).
        var authority: String?
        /// When the request arrived.
        var at = ContinuousClock.now
    }

    enum StreamEnd: Sendable {
        /// Close the stream normally.
        case close
        /// Drop the connection without finishing the chunked body.
        case cut
        /// Stop sending and keep the connection open.
        case hang
    }

    indirect enum Reply: Sendable {
        /// `reply` after `milliseconds`.
        case delayed(Int, Reply)
        /// `reply` once the test opens the gate.
        case gated(Reply)
        case json(status: Int, body: String, headers: [(String, String)] = [])
        /// Events are written one per chunk; `gate` (if set) is awaited after `gateAfter` events.
        case sse(events: [String], end: StreamEnd = .close, gateAfter: Int? = nil, status: Int = 200)
        /// Events each written after its delay (first tokens that take long, idle stalls).
        case sseTimed(events: [(delayMs: Int, event: String)], end: StreamEnd = .close)
        /// Binary chunks, one write each (AWS's event stream).
        case chunks([[UInt8]], contentType: String)
        case hang
    }

    let name: String
    private let seenBox = Mutex<[Seen]>([])
    private let portBox = Mutex(0)
    private let taskBox = Mutex<Task<Void, any Error>?>(nil)
    private let handler: Mutex<@Sendable (Seen) -> Reply>
    /// Opened by a test to let gated replies continue.
    let gate = Gate()
    /// Reports that a stream's client went away (a write failed).
    let disconnects: AsyncStream<Void>
    private let disconnectContinuation: AsyncStream<Void>.Continuation

    init(name: String) {
        self.name = name
        self.handler = Mutex(FakeLLM.standard(name: name))
        (disconnects, disconnectContinuation) = AsyncStream.makeStream()
    }

    var port: Int { portBox.withLock { $0 } }
    var endpoint: String { "http://127.0.0.1:\(port)" }
    var requests: [Seen] { seenBox.withLock { $0 } }

    func reply(_ handler: @escaping @Sendable (Seen) -> Reply) {
        self.handler.withLock { $0 = handler }
    }

    func openGate() { gate.open() }
    func closeGate() { gate.close() }

    /// Suspends callers until opened; stays open.
    final class Gate: Sendable {
        private let state = Mutex<(isOpen: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

        func wait() async {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state in
                    if state.isOpen { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }

        /// Closes it again for the next request (waiters already released stay released).
        func close() { state.withLock { $0.isOpen = false } }

        func open() {
            let waiters = state.withLock { state in
                state.isOpen = true
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    // MARK: - Standard answers

    static func completion(model: String, text: String = "1+1 equals 2.", usage: (Int, Int) = (23, 8)) -> String {
        let body: JSONValue = [
            "id": "chatcmpl-1", "object": "chat.completion", "model": .string(model),
            "choices": [
                ["index": 0, "message": ["role": "assistant", "content": .string(text)], "finish_reason": "stop"]
            ],
            "usage": [
                "prompt_tokens": .int(usage.0), "completion_tokens": .int(usage.1),
                "total_tokens": .int(usage.0 + usage.1),
            ],
        ]
        return body.serialized()
    }

    static func chunk(model: String, delta: JSONValue, finish: String? = nil) -> String {
        let body: JSONValue = [
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": .string(model),
            "choices": [["index": 0, "delta": delta, "finish_reason": finish.map { .string($0) } ?? .null]],
        ]
        return "data: \(body.serialized())\n\n"
    }

    /// role chunk, one chunk per word, finish chunk, usage chunk (if asked), `[DONE]`.
    static func chatStream(model: String, words: [String], includeUsage: Bool, usage: (Int, Int) = (23, 8)) -> [String]
    {
        var events = [chunk(model: model, delta: ["role": "assistant", "content": ""])]
        events += words.map { chunk(model: model, delta: ["content": .string($0)]) }
        events.append(chunk(model: model, delta: [:], finish: "stop"))
        if includeUsage {
            let body: JSONValue = [
                "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": .string(model), "choices": [],
                "usage": [
                    "prompt_tokens": .int(usage.0), "completion_tokens": .int(usage.1),
                    "total_tokens": .int(usage.0 + usage.1),
                ],
            ]
            events.append("data: \(body.serialized())\n\n")
        }
        events.append("data: [DONE]\n\n")
        return events
    }

    static func embedding(model: String) -> String {
        let body: JSONValue = [
            "object": "list", "data": [["object": "embedding", "index": 0, "embedding": [0.1, -0.2]]],
            "model": .string(model), "usage": ["prompt_tokens": 2, "total_tokens": 2],
        ]
        return body.serialized()
    }

    /// Echoes the requested model; streams when asked.
    static func standard(name: String) -> @Sendable (Seen) -> Reply {
        { seen in
            let model = seen.body["model"]?.stringValue ?? "\(name)-model"
            if seen.body["input"] != nil, seen.body["messages"] == nil {
                return .json(status: 200, body: embedding(model: model))
            }
            if seen.body["stream"]?.boolValue == true {
                let usage = seen.body["stream_options"]?["include_usage"]?.boolValue == true
                return .sse(events: chatStream(model: model, words: ["1+1", " equals", " 2."], includeUsage: usage))
            }
            return .json(status: 200, body: completion(model: model), headers: [("x-request-id", "req-\(name)")])
        }
    }

    // MARK: - Server

    /// With `tls`, serves HTTPS with the self-signed certificate in Tests/Fixtures.
    static func start(name: String, tls: Bool = false) async throws -> FakeLLM {
        let llm = FakeLLM(name: name)
        let (ready, readiness) = AsyncStream<Void>.makeStream()
        var server: HTTPServerBuilder = .http1()
        if tls {
            var fixtures = URL(fileURLWithPath: #filePath)
            while fixtures.lastPathComponent != "Tests" { fixtures.deleteLastPathComponent() }
            fixtures.appendPathComponent("Fixtures")
            let certificate = try NIOSSLCertificate.fromPEMFile(fixtures.appendingPathComponent("test-cert.pem").path)
            let key = try NIOSSLPrivateKey(file: fixtures.appendingPathComponent("test-key.pem").path, format: .pem)
            let configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: certificate.map { .certificate($0) }, privateKey: .privateKey(key))
            server = try .tls(.http1(), tlsConfiguration: configuration)
        }
        let app = Application(
            responder: CallbackResponder { (request: Request, _: BasicRequestContext) in
                try await llm.respond(request)
            },
            server: server,
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                llm.portBox.withLock { $0 = channel.localAddress?.port ?? 0 }
                readiness.yield()
            },
            logger: quietLogger)
        let task = Task { try await app.run() }
        llm.taskBox.withLock { $0 = task }
        for await _ in ready { break }
        return llm
    }

    func stop() async {
        let task = taskBox.withLock { $0 }
        task?.cancel()
        _ = try? await task?.value
    }

    private func respond(_ request: Request) async throws -> Response {
        var request = request
        let bytes = try await request.collectBody(upTo: 1 << 24)
        let raw = String(buffer: bytes)
        let seen = Seen(
            method: request.method.rawValue, path: request.uri.path, query: request.uri.query, headers: request.headers,
            body: (try? JSONParser.parse(raw)) ?? .null, rawBody: raw, authority: request.head.authority)
        seenBox.withLock { $0.append(seen) }
        var reply = handler.withLock { $0 }(seen)
        while true {
            if case .delayed(let ms, let inner) = reply {
                try await Task.sleep(for: .milliseconds(ms))
                reply = inner
            } else if case .gated(let inner) = reply {
                await gate.wait()
                reply = inner
            } else {
                break
            }
        }
        switch reply {
        case .delayed, .gated:
            return Response(status: .internalServerError)
        case .json(let status, let body, let headers):
            var fields = HTTPFields()
            fields[.contentType] = "application/json"
            for (name, value) in headers { fields[HTTPField.Name(name)!] = value }
            return Response(
                status: HTTPResponse.Status(code: status), headers: fields,
                body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
        case .hang:
            try await Task.sleep(for: .seconds(3600))
            return Response(status: .ok)
        case .sseTimed(let events, let end):
            let disconnected = disconnectContinuation
            return Response(
                status: .ok, headers: [.contentType: "text/event-stream"],
                body: ResponseBody { writer in
                    do {
                        for (delay, event) in events {
                            if delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
                            try await writer.write(ByteBuffer(string: event))
                        }
                        switch end {
                        case .close: try await writer.finish(nil)
                        case .cut: throw CancellationError()
                        case .hang: try await Task.sleep(for: .seconds(3600))
                        }
                    } catch {
                        disconnected.yield()
                        throw error
                    }
                })
        case .chunks(let chunks, let contentType):
            var fields = HTTPFields()
            fields[.contentType] = contentType
            return Response(
                status: .ok, headers: fields,
                body: ResponseBody { writer in
                    for chunk in chunks { try await writer.write(ByteBuffer(bytes: chunk)) }
                    try await writer.finish(nil)
                })
        case .sse(let events, let end, let gateAfter, let status):
            let gate = self.gate
            let disconnected = disconnectContinuation
            return Response(
                status: HTTPResponse.Status(code: status), headers: [.contentType: "text/event-stream"],
                body: ResponseBody { writer in
                    do {
                        for (i, event) in events.enumerated() {
                            if i == gateAfter { await gate.wait() }
                            try await writer.write(ByteBuffer(string: event))
                        }
                        switch end {
                        case .close: try await writer.finish(nil)
                        case .cut: throw CancellationError()
                        case .hang:
                            // Keep sending SSE comments until the gateway gives up on us.
                            while true {
                                try await Task.sleep(for: .milliseconds(20))
                                try await writer.write(ByteBuffer(string: ": ping\n\n"))
                            }
                        }
                    } catch {
                        disconnected.yield()
                        throw error
                    }
                })
        }
    }
}

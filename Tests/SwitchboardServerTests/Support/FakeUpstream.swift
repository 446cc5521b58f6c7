import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SwitchboardCore
import Synchronization

/// An HTTP server standing in for an upstream service: it records every request it gets and
/// answers with a JSON echo of it (method, path, query, headers, body) and its own name.
final class FakeUpstream: Sendable {
    struct Seen: Sendable {
        var method: String
        var path: String
        var query: String?
        var headers: HTTPFields
        var body: String
    }

    let name: String
    private let seen = Mutex<[Seen]>([])
    private let portBox = Mutex<Int>(0)
    private var task: Task<Void, any Error>? { taskBox.withLock { $0 } }
    private let taskBox = Mutex<Task<Void, any Error>?>(nil)

    init(name: String) {
        self.name = name
    }

    var port: Int { portBox.withLock { $0 } }
    var address: String { "127.0.0.1:\(port)" }
    var requests: [Seen] { seen.withLock { $0 } }

    static func start(name: String) async throws -> FakeUpstream {
        let upstream = FakeUpstream(name: name)
        let (ready, readiness) = AsyncStream<Void>.makeStream()
        let app = Application(
            responder: CallbackResponder { (request: Request, _: BasicRequestContext) in
                var request = request
                let body = try await request.collectBody(upTo: 1 << 20)
                let seen = Seen(
                    method: request.method.rawValue, path: request.uri.path, query: request.uri.query,
                    headers: request.headers, body: String(buffer: body))
                upstream.seen.withLock { $0.append(seen) }
                var headers: JSONObject = [:]
                for field in request.headers { headers[field.name.canonicalName] = .string(field.value) }
                let echo: JSONValue = [
                    "upstream": .string(upstream.name), "method": .string(seen.method), "path": .string(seen.path),
                    "query": seen.query.map { .string($0) } ?? .null, "headers": .object(headers),
                    "body": .string(seen.body),
                ]
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/json", HTTPField.Name("X-Upstream")!: upstream.name],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: echo.serialized())))
            },
            configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                upstream.portBox.withLock { $0 = channel.localAddress?.port ?? 0 }
                readiness.yield()
            },
            logger: quietLogger)
        let task = Task { try await app.run() }
        upstream.taskBox.withLock { $0 = task }
        for await _ in ready { break }
        return upstream
    }

    func stop() async {
        task?.cancel()
        _ = try? await task?.value
    }
}

/// The fakes' server logger: they are stopped by cancellation, which Hummingbird reports as
/// `Waiting on child channel: CancellationError()` at error level — expected, so not printed.
let quietLogger: Logger = {
    var logger = Logger(label: "test-fake")
    logger.logLevel = .critical
    return logger
}()

import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SwitchboardCore

/// Everything known about one data-plane request while it passes through the pipeline: the
/// request, the matched route, the consumer, the body (read at most once, parsed at most once)
/// and what the log phase reports.
///
/// A reference type so that plugins share one instance; it is confined to its request: the
/// handler and then the response body writer use it one after the other, never at the same
/// time, which is why the unchecked `Sendable` is sound.
public final class Exchange: @unchecked Sendable {
    public private(set) var request: Request
    public let method: String
    /// The request path, normalised (see ``RequestPath``).
    public let path: String
    /// The path's `..` segments climb above the root: the request is refused.
    public let pathEscapesRoot: Bool
    public let rawQuery: String?
    /// Lower-cased `Host` without the port.
    public let host: String
    public let hostHeader: String?
    public let remoteAddress: String
    public let remotePort: Int
    public let start: ContinuousClock.Instant
    public let startDate: Date
    public let snapshot: Snapshot
    public let requestID: String
    let maxBodySize: Int

    public internal(set) var route: CompiledRoute?
    public var consumer: CompiledConsumer?
    public var credentialID: String?
    /// The values of the route path's `:name` and `*name` segments (`$uri_param_<name>`).
    public var uriParameters: [(name: String, value: String)] = []
    /// Whether the client reached the gateway over TLS (`$scheme`).
    public var isTLS = false
    /// The `ssls` object the connection's TLS handshake chose (by SNI).
    public var tlsCertificateID: String?
    /// Headers plugins add to (or, with `nil`, remove from) the upstream request.
    public var upstreamHeaderEdits: [(HTTPField.Name, String?)] = []
    /// Query arguments plugins remove before proxying (key-auth `hide_credentials`).
    public var removedQueryArgs: Set<String> = []
    /// Query arguments whose values never reach a log line (key-auth's key parameter).
    public var redactedQueryArgs: Set<String> = []
    /// Lower-cased headers that carry the client's own credentials for the gateway (key-auth's
    /// header): never sent to an AI provider.
    public var credentialHeaders: Set<String> = []

    /// Lower-cased names the client listed in `Connection` (hop-by-hop, never forwarded).
    public var connectionListedHeaders: Set<String> {
        var names = Set<String>()
        for value in request.headers[values: .connection] {
            for name in value.split(separator: ",") {
                let trimmed = String(name).trimmed.lowercased()
                if !trimmed.isEmpty { names.insert(trimmed) }
            }
        }
        return names
    }

    public var status = 0
    public var bodyBytesSent = 0
    public var upstreamAddr: String?
    public var upstreamStatus: Int?
    public var upstreamResponseTime: Duration?
    /// Time spent waiting for upstreams (requests sent until their answers were read).
    public var upstreamWait: Duration = .zero
    /// Time the gateway itself spent producing the response head: total minus upstream wait.
    public var gatewayOverhead: Duration?
    /// Values of log variables that plugins own (`$request_type`, `$llm_model`, ...).
    public var logValues: [String: String] = [:]
    /// Per-plugin request state, by plugin (plugins add typed accessors in extensions).
    public var extensions: [String: any Sendable] = [:]
    /// The client's connection (`nil` in unit tests), for streams to notice it closing.
    public var channel: (any Channel)?
    /// The plugins running for this request (route plugins merged with the consumer's).
    public var plugins: [PluginSlot] = []
    /// Headers plugins add to whatever response the client gets (quota headers, ...).
    public private(set) var responseHeaders = HTTPFields()

    public func setResponseHeader(_ name: String, _ value: String) {
        guard let field = HTTPField.Name(name) else { return }
        responseHeaders[field] = value
    }

    private var bodyBuffer: ByteBuffer?
    private var parsedBody: JSONValue??
    private var parsedArgs: [String: String]?
    private var parsedCookies: [String: String]?

    init(
        request: Request, remote: SocketAddress?, snapshot: Snapshot, maxBodySize: Int,
        start: ContinuousClock.Instant = .now
    ) {
        self.request = request
        self.method = request.method.rawValue
        // Matched and forwarded normalised (dot segments resolved, slashes merged).
        let normalized = RequestPath.normalize(request.uri.path)
        self.path = normalized ?? request.uri.path
        self.pathEscapesRoot = normalized == nil
        self.rawQuery = request.uri.query
        let hostHeader = request.head.authority
        self.hostHeader = hostHeader
        self.host = Self.stripPort(hostHeader ?? "").lowercased()
        self.remoteAddress = remote?.ipAddress ?? "127.0.0.1"
        self.remotePort = remote?.port ?? 0
        self.snapshot = snapshot
        self.maxBodySize = maxBodySize
        self.start = start
        self.startDate = Date()
        if let given = request.headers[.xRequestID], !given.isEmpty, given.utf8.count <= 200 {
            self.requestID = given
        } else {
            self.requestID = Self.makeRequestID()
        }
    }

    static func stripPort(_ host: String) -> String {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            return String(host[host.index(after: host.startIndex)..<close])
        }
        if let colon = host.firstIndex(of: ":") { return String(host[..<colon]) }
        return host
    }

    /// 32 hex characters, like APISIX's request ids.
    static func makeRequestID() -> String { Randomness.hex(bytes: 16) }

    /// The request body, read once and kept; `BodyTooLarge` past the configured limit (or the
    /// smaller `limit` given, for reads before authentication).
    public func body(limit: Int? = nil) async throws -> ByteBuffer {
        if let bodyBuffer { return bodyBuffer }
        let maxBodySize = min(limit ?? self.maxBodySize, self.maxBodySize)
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodySize {
            throw BodyTooLarge(size: length, limit: maxBodySize)
        }
        do {
            let buffer = try await request.collectBody(upTo: maxBodySize)
            bodyBuffer = buffer
            return buffer
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw BodyTooLarge(size: nil, limit: maxBodySize)
        } catch is NIOTooManyBytesError {
            // A chunked body (no Content-Length) that grew past the limit while being read.
            throw BodyTooLarge(size: nil, limit: maxBodySize)
        }
    }

    /// Whether the body has been read into memory (so proxying sends the buffer, not a stream).
    public var bufferedBody: ByteBuffer? { bodyBuffer }

    /// The body parsed as JSON, once; throws the parser's error (with its position) when it is
    /// not JSON, for plugins that answer with it.
    public func parsedJSONBody() async throws -> JSONValue {
        if let parsed = parsedBody, let value = parsed { return value }
        let buffer = try await body()
        let value: JSONValue
        if buffer.readableBytes > Self.parseOnLoopLimit {
            // Tens of megabytes of JSON take long enough to stall every connection of the event
            // loop this request runs on: parse them on the global pool.
            value = try await withTaskExecutorPreference(globalConcurrentExecutor) {
                try JSONParser.parse(buffer.readableBytesView)
            }
        } else {
            value = try JSONParser.parse(buffer.readableBytesView)
        }
        parsedBody = .some(value)
        return value
    }

    /// Bodies above this are parsed off the event loop.
    static let parseOnLoopLimit = 1 << 20

    /// Synchronous access for variable lookups after the body was read.
    var jsonBodyIfParsed: JSONValue? {
        if let parsedBody { return parsedBody }
        guard let bodyBuffer else { return nil }
        let value = try? JSONParser.parse(bodyBuffer.readableBytesView)
        parsedBody = .some(value)
        return value
    }

    public var args: [String: String] {
        if let parsedArgs { return parsedArgs }
        var result: [String: String] = [:]
        for pair in (rawQuery ?? "").split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.decode(parts[0])
            if result[key] == nil { result[key] = parts.count > 1 ? Self.decode(parts[1]) : "" }
        }
        parsedArgs = result
        return result
    }

    public var cookies: [String: String] {
        if let parsedCookies { return parsedCookies }
        var result: [String: String] = [:]
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard let name = parts.first?.trimmingCharacters(in: .whitespaces) else { continue }
                result[name] = parts.count > 1 ? String(parts[1]).trimmingCharacters(in: .whitespaces) : ""
            }
        }
        parsedCookies = result
        return result
    }

    static func decode(_ text: Substring) -> String {
        let plus = text.replacingOccurrences(of: "+", with: " ")
        return plus.removingPercentEncoding ?? plus
    }

    /// The query string to send upstream, without arguments plugins removed.
    var upstreamQuery: String? {
        guard let rawQuery, !removedQueryArgs.isEmpty else { return rawQuery }
        let kept = rawQuery.split(separator: "&").filter { pair in
            let key = Self.decode(pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)[0])
            return !removedQueryArgs.contains(key)
        }
        return kept.isEmpty ? nil : kept.joined(separator: "&")
    }

    public var elapsed: Duration { ContinuousClock.now - start }

    /// The query string as logged: the values of ``redactedQueryArgs`` replaced by `***`.
    public var loggedQuery: String? {
        guard let rawQuery, !redactedQueryArgs.isEmpty else { return rawQuery }
        return Self.redact(query: rawQuery, names: redactedQueryArgs)
    }

    /// The path and query as logged (`$request_uri`).
    public var loggedURI: String { loggedQuery.map { "\(path)?\($0)" } ?? path }

    /// `query` with the values of the arguments named in `names` (decoded names) replaced by `***`.
    public static func redact(query: String, names: Set<String>) -> String {
        guard !names.isEmpty else { return query }
        var changed = false
        let pairs = query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> String in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, names.contains(decode(parts[0])) else { return String(pair) }
            changed = true
            return parts[0] + "=***"
        }
        return changed ? pairs.joined(separator: "&") : query
    }
}

/// A request body over the configured limit (413).
public struct BodyTooLarge: Error {
    public var size: Int?
    public var limit: Int
}

extension HTTPField.Name {
    public static let xRequestID = HTTPField.Name("X-Request-Id")!
    public static let xAPIKey = HTTPField.Name("X-API-KEY")!
}

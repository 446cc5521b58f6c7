import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import SwitchboardCore
import SwitchboardStore
import Synchronization

/// Embeddings the gateway has fetched, shared by every route: an example is embedded once per
/// (endpoint, model, text), however often the configuration around it changes. Bounded: when
/// full it starts over (examples are re-embedded on their next use).
public final class EmbeddingCache: Sendable {
    private let vectors = Mutex<[String: [Double]]>([:])
    static let capacity = 10_000

    public init() {}

    func get(_ key: String) -> [Double]? { vectors.withLock { $0[key] } }

    func put(_ entries: [(String, [Double])]) {
        vectors.withLock { vectors in
            if vectors.count + entries.count > Self.capacity { vectors.removeAll() }
            for (key, vector) in entries { vectors[key] = vector }
        }
    }
}

/// The `semantic` balancer of one `ai-proxy-multi`: embeds the request's last user message,
/// scores each instance by its best-matching example and picks the best instance that reaches
/// its threshold; otherwise — and whenever the embedder fails, is slower than its timeout, or
/// answers vectors of another dimension — `semantic_opts.fallback`, else the first instance.
/// The embedding call never holds a request longer than `semantic_opts.embeddings.timeout`.
final class SemanticRouter: Sendable {
    struct Decision {
        var index: Int
        /// `X-AI-Semantic-Scores`, when there were scores.
        var scores: String?
    }

    struct EmbeddingFailed: Error, CustomStringConvertible {
        var description: String
    }

    let options: SemanticOptions
    let names: [String]
    let examples: [[String]]
    let thresholds: [Double]
    let fallbackIndex: Int
    let cache: EmbeddingCache
    let clients: UpstreamClients
    let logger: Logger
    /// The examples' embedding in flight, shared by the requests that wait for it.
    private let loading = Mutex<Task<[[[Double]]]?, Never>?>(nil)

    init(
        options: SemanticOptions, instances: [AIInstance], cache: EmbeddingCache, clients: UpstreamClients,
        logger: Logger
    ) {
        self.options = options
        names = instances.map(\.name)
        examples = instances.map(\.examples)
        thresholds = instances.map { $0.threshold ?? options.threshold }
        fallbackIndex = options.fallback.flatMap { name in instances.firstIndex { $0.name == name } } ?? 0
        self.cache = cache
        self.clients = clients
        self.logger = logger
    }

    func decide(_ body: JSONValue) async -> Decision {
        guard let text = SemanticScorer.routingText(body) else { return Decision(index: fallbackIndex) }
        guard let references = await references() else { return Decision(index: fallbackIndex) }
        let query: [Double]
        do {
            query = try await embed([text])[0]
        } catch {
            logger.warning("semantic routing: embedding the request failed (\(error)), using the fallback")
            return Decision(index: fallbackIndex)
        }
        guard let ranked = SemanticScorer.rank(query: query, examples: references) else {
            logger.warning("semantic routing: embedding dimension mismatch, using the fallback")
            return Decision(index: fallbackIndex)
        }
        let picked = SemanticScorer.choose(ranked) { self.thresholds[$0] }
        return Decision(index: picked ?? fallbackIndex, scores: SemanticScorer.header(ranked, names: names))
    }

    /// Each instance's example vectors (normalized): from the cache, else embedded in one call
    /// that concurrent requests share. `nil` when that call failed (logged; the next request
    /// tries again).
    func references() async -> [[[Double]]]? {
        if let cached = cachedReferences() { return cached }
        let task = loading.withLock { loading in
            if let running = loading { return running }
            let task = Task { await self.load() }
            loading = task
            return task
        }
        return await task.value
    }

    private func cachedReferences() -> [[[Double]]]? {
        var out: [[[Double]]] = []
        for texts in examples {
            var vectors: [[Double]] = []
            for text in texts {
                guard let vector = cache.get(options.cacheKey(text)) else { return nil }
                vectors.append(vector)
            }
            out.append(vectors)
        }
        return out
    }

    private func load() async -> [[[Double]]]? {
        defer { loading.withLock { $0 = nil } }
        // Only what the cache lacks: a changed configuration re-embeds its new examples only.
        let texts = Set(examples.joined()).filter { cache.get(options.cacheKey($0)) == nil }.sorted()
        guard !texts.isEmpty else { return cachedReferences() }
        do {
            let vectors = try await embed(texts)
            cache.put(zip(texts, vectors).map { (options.cacheKey($0), SemanticScorer.normalized($1)) })
            logger.info("semantic routing: embedded \(texts.count) examples with \(options.model)")
        } catch {
            logger.error("semantic routing: embedding the instances' examples failed: \(error)")
            return nil
        }
        return cachedReferences()
    }

    /// One call to the embeddings endpoint, bounded by the timeout as a whole (head and body).
    func embed(_ texts: [String]) async throws -> [[Double]] {
        let timeout = options.timeoutMs
        return try await BoundedRace.run(
            limit: .milliseconds(timeout),
            timeout: EmbeddingFailed(description: "no answer within \(timeout) ms")
        ) { [self] in
            try await self.fetch(texts)
        }
    }

    private func fetch(_ texts: [String]) async throws -> [[Double]] {
        let endpoint = options.endpoint
        // Messages name `place`, never the query: it may carry `auth.query` secrets.
        let place = "\(endpoint.scheme)://\(endpoint.authority)\(endpoint.path ?? "/v1/embeddings")"
        var url = place
        let query =
            options.authQuery.map { "\(AIProxyHandler.escape($0.name))=\(AIProxyHandler.escape($0.value))" }
            + endpoint.query.map { "\($0.0)=\($0.1)" }
        if !query.isEmpty { url += "?" + query.joined(separator: "&") }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        for (name, value) in options.authHeaders { request.headers.replaceOrAdd(name: name, value: value) }
        let body: JSONValue = ["model": .string(options.model), "input": .array(texts.map { .string($0) })]
        request.body = .bytes(ByteBuffer(bytes: body.serializedBytes()))
        let client = clients.client(readTimeoutMs: options.timeoutMs, verifyTLS: options.sslVerify)
        let response = try await client.execute(request, timeout: .milliseconds(Int64(options.timeoutMs)))
        let bytes = try await response.body.collect(upTo: 64 * 1024 * 1024)
        guard response.status == .ok else {
            throw EmbeddingFailed(description: "\(place) answered status \(response.status.code)")
        }
        guard let answer = try? JSONParser.parse(Array(buffer: bytes)), let data = answer["data"]?.arrayValue,
            data.count == texts.count
        else {
            throw EmbeddingFailed(description: "\(place) did not answer \(texts.count) embeddings")
        }
        var vectors = [[Double]](repeating: [], count: texts.count)
        for (position, item) in data.enumerated() {
            let index = item["index"]?.intValue ?? position
            guard vectors.indices.contains(index), let numbers = item["embedding"]?.arrayValue, !numbers.isEmpty
            else {
                throw EmbeddingFailed(description: "\(place) answered a malformed embedding")
            }
            let vector = numbers.compactMap(\.doubleValue)
            guard vector.count == numbers.count, vector.allSatisfy(\.isFinite) else {
                throw EmbeddingFailed(description: "\(place) answered a non-numeric embedding")
            }
            vectors[index] = vector
        }
        guard vectors.allSatisfy({ !$0.isEmpty }) else {
            throw EmbeddingFailed(description: "\(place) did not answer \(texts.count) embeddings")
        }
        return vectors
    }
}

/// `semantic_opts` of `ai-proxy-multi` in typed form: where the `semantic` balancer gets its
/// embeddings, and how it decides.
public struct SemanticOptions: Sendable {
    /// `openai` or `azure-openai`.
    public var provider: String
    public var model: String
    /// The embeddings URL: `override`-style (a URL without a path gets `/v1/embeddings`), or
    /// OpenAI's when absent.
    public var endpoint: AIEndpoint
    public var authHeaders: [(name: String, value: String)]
    public var authQuery: [(name: String, value: String)]
    /// The longest an embedding call may take; past it the request goes to the fallback.
    public var timeoutMs: Int
    public var sslVerify: Bool
    /// The score an instance must reach unless it sets its own `threshold`.
    public var threshold: Double
    /// The instance used when none reaches its threshold or the embedder fails.
    public var fallback: String?
    /// Adds `X-AI-Semantic-Scores` and `X-AI-Semantic-Picked-Instance` to responses.
    public var debugging: Bool

    public init(_ json: JSONValue) {
        let embeddings = json["embeddings"] ?? .null
        provider = embeddings["provider"]?.stringValue ?? "openai"
        model = embeddings["model"]?.stringValue ?? ""
        var endpoint =
            embeddings["endpoint"]?.stringValue.flatMap(AIEndpoint.init)
            ?? AIEndpoint(scheme: "https", host: "api.openai.com", port: 443, path: nil)
        if endpoint.path == nil { endpoint.path = "/v1/embeddings" }
        self.endpoint = endpoint
        authHeaders = AIInstance.stringPairs(embeddings["auth"]?["header"]).map { ($0.0.lowercased(), $0.1) }
        authQuery = AIInstance.stringPairs(embeddings["auth"]?["query"])
        timeoutMs = embeddings["timeout"]?.intValue ?? 3000
        sslVerify = embeddings["ssl_verify"]?.boolValue ?? true
        threshold = json["threshold"]?.doubleValue ?? 0
        fallback = json["fallback"]?.stringValue
        debugging = json["debugging"]?.boolValue ?? false
    }

    /// What identifies an embedding: the same text through the same model at the same place
    /// is embedded once, whichever route asks.
    public func cacheKey(_ text: String) -> String {
        "\(endpoint.scheme)://\(endpoint.authority)\(endpoint.path ?? "")|\(model)|\(text)"
    }
}

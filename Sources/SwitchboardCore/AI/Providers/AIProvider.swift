/// An LLM provider as data: where it lives, which protocols it speaks at which paths, and how it
/// names `max_tokens`. A provider is one small file in this folder.
public struct AIProvider: Sendable {
    public var name: String
    /// Default scheme/host/port; `nil` when the instance must give `override.endpoint`.
    public var defaultHost: String?
    public var defaultScheme = "https"
    public var defaultPort = 443
    /// Path per supported protocol (its capabilities). Passthrough is always supported.
    public var paths: [AIProtocol: String]
    /// The body field `override.llm_options.max_tokens` is written to, per target protocol.
    public var maxTokensField: [AIProtocol: String]
    /// openai's chat protocol wants `max_completion_tokens` and no `max_tokens`.
    public var removesMaxTokensWhenMapping = false
    /// azure-openai takes the model from the deployment URL and refuses `model` in the body.
    public var removesModel = false
    /// OpenAI chat requests go to this protocol instead, translated (Anthropic: its native
    /// Messages API, for prompt caching and its usage, not its OpenAI-compatible endpoint).
    public var chatVia: AIProtocol?
    /// OpenAI embeddings requests go to this protocol instead, translated (Vertex AI's predict).
    public var embeddingsVia: AIProtocol?
    /// Where a streamed request goes, when not to the same path (Bedrock's `converse-stream`).
    public var streamPaths: [AIProtocol: String]

    public init(
        name: String, defaultHost: String?, paths: [AIProtocol: String], maxTokensField: [AIProtocol: String],
        removesMaxTokensWhenMapping: Bool = false, removesModel: Bool = false, chatVia: AIProtocol? = nil,
        embeddingsVia: AIProtocol? = nil, streamPaths: [AIProtocol: String] = [:]
    ) {
        self.chatVia = chatVia
        self.embeddingsVia = embeddingsVia
        self.streamPaths = streamPaths
        self.name = name
        self.defaultHost = defaultHost
        self.paths = paths
        self.maxTokensField = maxTokensField
        self.removesMaxTokensWhenMapping = removesMaxTokensWhenMapping
        self.removesModel = removesModel
    }

    public func supports(_ proto: AIProtocol) -> Bool {
        proto == .passthrough || paths[proto] != nil
    }

    /// `openai-chat, openai-embeddings` for the "does not support" message.
    public var supportedList: String {
        AIProtocol.allCases.filter { paths[$0] != nil }.map(\.rawValue).joined(separator: ", ")
    }

    /// Every provider this build can call, by name.
    public static let all: [String: AIProvider] = Dictionary(
        uniqueKeysWithValues: [
            openAI, deepSeek, openAICompatible, azureOpenAI, anthropic, openRouter, gemini, aimlAPI, vertexAI, bedrock,
        ].map { ($0.name, $0) })
}

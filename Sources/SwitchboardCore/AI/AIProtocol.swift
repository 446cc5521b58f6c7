/// The wire protocols an AI request can speak, named as APISIX names them.
public enum AIProtocol: String, Sendable, Hashable, CaseIterable {
    case openaiChat = "openai-chat"
    case openaiEmbeddings = "openai-embeddings"
    case openaiResponses = "openai-responses"
    case anthropicMessages = "anthropic-messages"
    /// Vertex AI's `:predict` for embeddings: spoken to providers only, never by clients.
    case vertexPredict = "vertex-predict"
    /// Bedrock's Converse API (`/model/{model}/converse`, `/converse-stream`).
    case bedrockConverse = "bedrock-converse"
    case passthrough

    /// Detects the client's protocol from the URI and the JSON body, first match wins
    /// (APISIX's `detect_request_type`); `nil` when nothing matches (`{}`, arrays, scalars).
    public static func detect(path: String, body: JSONValue) -> AIProtocol? {
        guard case .object(let object) = body else { return nil }
        if path.hasSuffix("/converse") || path.hasSuffix("/converse-stream"), case .array? = object["messages"] {
            return .bedrockConverse
        }
        if path.hasSuffix("/v1/messages") { return .anthropicMessages }
        if path.hasSuffix("/v1/responses"), object["input"] != nil { return .openaiResponses }
        if case .array? = object["messages"] { return .openaiChat }
        if object["input"] != nil { return .openaiEmbeddings }
        if !object.isEmpty { return .passthrough }
        return nil
    }

    /// Whether a body in this protocol asks for a streamed answer.
    public func isStreaming(_ body: JSONValue) -> Bool {
        switch self {
        case .openaiEmbeddings, .vertexPredict: return false
        default: return body["stream"]?.boolValue == true
        }
    }
}

extension AIProvider {
    public static let deepSeek = AIProvider(
        name: "deepseek", defaultHost: "api.deepseek.com", paths: [.openaiChat: "/chat/completions"],
        maxTokensField: [.openaiChat: "max_tokens"])

    public static let aimlAPI = AIProvider(
        name: "aimlapi", defaultHost: "api.aimlapi.com", paths: [.openaiChat: "/chat/completions"],
        maxTokensField: [.openaiChat: "max_tokens"])

    /// Anthropic: native Messages passed through, and OpenAI chat translated to Messages (its
    /// OpenAI-compatible endpoint only when `override.endpoint` names that path).
    public static let anthropic = AIProvider(
        name: "anthropic", defaultHost: "api.anthropic.com",
        paths: [.openaiChat: "/v1/chat/completions", .anthropicMessages: "/v1/messages"],
        maxTokensField: [.openaiChat: "max_tokens", .anthropicMessages: "max_tokens"], chatVia: .anthropicMessages)

    public static let openRouter = AIProvider(
        name: "openrouter", defaultHost: "openrouter.ai", paths: [.openaiChat: "/api/v1/chat/completions"],
        maxTokensField: [.openaiChat: "max_tokens"])

    /// Gemini through Google's OpenAI-compatible endpoint.
    public static let gemini = AIProvider(
        name: "gemini", defaultHost: "generativelanguage.googleapis.com",
        paths: [.openaiChat: "/v1beta/openai/chat/completions"],
        maxTokensField: [.openaiChat: "max_completion_tokens"])
}

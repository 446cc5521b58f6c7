extension AIProvider {
    public static let openAI = AIProvider(
        name: "openai", defaultHost: "api.openai.com",
        paths: [
            .openaiChat: "/v1/chat/completions", .openaiResponses: "/v1/responses",
            .openaiEmbeddings: "/v1/embeddings",
        ],
        maxTokensField: [.openaiChat: "max_completion_tokens", .openaiResponses: "max_output_tokens"],
        removesMaxTokensWhenMapping: true)

    /// Any server speaking OpenAI's API; `override.endpoint` says where.
    public static let openAICompatible = AIProvider(
        name: "openai-compatible", defaultHost: nil,
        paths: [
            .openaiChat: "/v1/chat/completions", .openaiResponses: "/v1/responses",
            .openaiEmbeddings: "/v1/embeddings",
        ],
        maxTokensField: [.openaiChat: "max_tokens", .openaiResponses: "max_output_tokens"])

    /// Azure OpenAI: the full deployment URL goes in `override.endpoint`; the model is the deployment.
    public static let azureOpenAI = AIProvider(
        name: "azure-openai", defaultHost: nil,
        paths: [.openaiChat: "/completions", .openaiEmbeddings: "/embeddings"],
        maxTokensField: [.openaiChat: "max_tokens"], removesModel: true)
}

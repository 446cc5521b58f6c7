extension AIProvider {
    /// Amazon Bedrock's Converse API, signed with SigV4 (`auth.aws`). The model goes in the URL
    /// (removed from the body), `max_tokens` in `inferenceConfig.maxTokens`; OpenAI chat clients
    /// are translated to Converse.
    public static let bedrock = AIProvider(
        name: "bedrock", defaultHost: "bedrock-runtime.{region}.amazonaws.com",
        paths: [.bedrockConverse: "/model/{model}/converse"],
        maxTokensField: [.bedrockConverse: "inferenceConfig.maxTokens"], removesModel: true,
        chatVia: .bedrockConverse, streamPaths: [.bedrockConverse: "/model/{model}/converse-stream"])
}

extension AIProvider {
    /// Google Vertex AI: its OpenAI-compatible chat endpoint, and embeddings through `:predict`.
    /// `{project}`, `{region}` and `{model}` come from `provider_conf` and the request; the
    /// access token from the instance's service account (`auth.gcp`).
    public static let vertexAI = AIProvider(
        name: "vertex-ai", defaultHost: "{region}-aiplatform.googleapis.com",
        paths: [
            .openaiChat: "/v1beta1/projects/{project}/locations/{region}/endpoints/openapi/chat/completions",
            .vertexPredict: "/v1/projects/{project}/locations/{region}/publishers/google/models/{model}:predict",
        ],
        maxTokensField: [.openaiChat: "max_completion_tokens"], embeddingsVia: .vertexPredict)
}

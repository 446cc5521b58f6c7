/// Token counts as the provider reported them (the gateway never tokenises).
public struct TokenUsage: Sendable, Equatable {
    public var prompt = 0
    public var completion = 0
    public var total = 0
    public var cacheRead = 0
    public var cacheCreation = 0
    public var reasoning = 0
    /// The provider's usage object, for `cost_expr`.
    public var raw: JSONValue = .null

    public init() {}

    public init(prompt: Int, completion: Int, total: Int? = nil) {
        self.prompt = Saturating.count(prompt)
        self.completion = Saturating.count(completion)
        self.total = total.map(Saturating.count) ?? self.prompt + self.completion
    }

    /// Reads a usage object in any of the shapes providers use: OpenAI chat/embeddings
    /// (`prompt_tokens`), Responses (`input_tokens`/`output_tokens` with details), Anthropic
    /// (`input_tokens`, `cache_read_input_tokens`), DeepSeek (`prompt_cache_hit_tokens`), Bedrock
    /// (`inputTokens`, `cacheReadInputTokens`).
    public init?(_ usage: JSONValue?) {
        guard let usage, case .object = usage else { return nil }
        raw = usage
        // Every count is clamped where it enters (a provider may send anything).
        let count: (JSONValue?) -> Int? = Saturating.count
        prompt = count(usage["prompt_tokens"]) ?? count(usage["input_tokens"]) ?? count(usage["inputTokens"]) ?? 0
        completion =
            count(usage["completion_tokens"]) ?? count(usage["output_tokens"]) ?? count(usage["outputTokens"]) ?? 0
        total = count(usage["total_tokens"]) ?? count(usage["totalTokens"]) ?? prompt + completion
        cacheRead =
            count(usage["prompt_tokens_details"]?["cached_tokens"]) ?? count(usage["prompt_cache_hit_tokens"])
            ?? count(usage["input_tokens_details"]?["cached_tokens"]) ?? count(usage["cache_read_input_tokens"])
            ?? count(usage["cacheReadInputTokens"]) ?? 0
        cacheCreation =
            count(usage["prompt_tokens_details"]?["cache_creation_input_tokens"])
            ?? count(usage["cache_creation_input_tokens"]) ?? count(usage["cacheWriteInputTokens"]) ?? 0
        reasoning =
            count(usage["completion_tokens_details"]?["reasoning_tokens"])
            ?? count(usage["output_tokens_details"]?["reasoning_tokens"]) ?? 0
    }

    /// Anthropic streams split usage over events: later non-zero values win.
    public mutating func merge(_ other: TokenUsage) {
        if other.prompt > 0 { prompt = other.prompt }
        if other.completion > 0 { completion = other.completion }
        if other.cacheRead > 0 { cacheRead = other.cacheRead }
        if other.cacheCreation > 0 { cacheCreation = other.cacheCreation }
        if other.reasoning > 0 { reasoning = other.reasoning }
        total = max(other.total, prompt + completion, total)
        if !other.raw.isNull { raw = raw.merging(patch: other.raw) }
    }

    /// Two attempts' usage together (a stream and its continuation): each was charged by
    /// its provider, so the counts add up.
    public mutating func add(_ other: TokenUsage) {
        prompt = Saturating.count(prompt + other.prompt)
        completion = Saturating.count(completion + other.completion)
        total = Saturating.count(total + other.total)
        cacheRead = Saturating.count(cacheRead + other.cacheRead)
        cacheCreation = Saturating.count(cacheCreation + other.cacheCreation)
        reasoning = Saturating.count(reasoning + other.reasoning)
        if raw.isNull { raw = other.raw }
    }

    public var isEmpty: Bool { prompt == 0 && completion == 0 && total == 0 }
}

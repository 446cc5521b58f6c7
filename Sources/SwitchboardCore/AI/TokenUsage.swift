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
        self.prompt = prompt
        self.completion = completion
        self.total = total ?? prompt + completion
    }

    /// Reads a usage object in any of the shapes providers use: OpenAI chat/embeddings
    /// (`prompt_tokens`), Responses (`input_tokens`/`output_tokens` with details), Anthropic
    /// (`input_tokens`, `cache_read_input_tokens`), DeepSeek (`prompt_cache_hit_tokens`).
    public init?(_ usage: JSONValue?) {
        guard let usage, case .object = usage else { return nil }
        raw = usage
        prompt = usage["prompt_tokens"]?.intValue ?? usage["input_tokens"]?.intValue ?? 0
        completion = usage["completion_tokens"]?.intValue ?? usage["output_tokens"]?.intValue ?? 0
        total = usage["total_tokens"]?.intValue ?? prompt + completion
        cacheRead =
            usage["prompt_tokens_details"]?["cached_tokens"]?.intValue ?? usage["prompt_cache_hit_tokens"]?.intValue
            ?? usage["input_tokens_details"]?["cached_tokens"]?.intValue ?? usage["cache_read_input_tokens"]?.intValue
            ?? 0
        cacheCreation =
            usage["prompt_tokens_details"]?["cache_creation_input_tokens"]?.intValue
            ?? usage["cache_creation_input_tokens"]?.intValue ?? 0
        reasoning =
            usage["completion_tokens_details"]?["reasoning_tokens"]?.intValue
            ?? usage["output_tokens_details"]?["reasoning_tokens"]?.intValue ?? 0
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
        prompt += other.prompt
        completion += other.completion
        total += other.total
        cacheRead += other.cacheRead
        cacheCreation += other.cacheCreation
        reasoning += other.reasoning
        if raw.isNull { raw = other.raw }
    }

    public var isEmpty: Bool { prompt == 0 && completion == 0 && total == 0 }
}

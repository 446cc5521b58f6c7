/// Builds the body sent to one instance from the client's body (§2.3.2), starting from the
/// client's parsed body each time so one instance's options never leak into another's.
public struct ShapedBody: Sendable {
    /// `nil` when nothing changed: the client's exact bytes are sent.
    public var body: JSONValue?
    /// Whether the gateway asked the upstream for usage the client did not ask for, so the
    /// usage-only chunk must be kept from the client.
    public var injectedUsage: Bool
    public var streaming: Bool
}

public enum RequestShaper {
    public static func shape(_ client: JSONValue, target: AIProtocol, instance: AIInstance) -> ShapedBody {
        var body = client
        var changed = false
        // 1. options, flat overwrite.
        for (key, value) in instance.options where body[key] != value {
            body[key] = value
            changed = true
        }
        let streaming = target.isStreaming(body)
        // Converse streams by its URL (`converse-stream`), not by a body field.
        if target == .bedrockConverse, body["stream"] != nil {
            body["stream"] = nil
            changed = true
        }
        // 2. Ask for usage in streams (merged into the client's stream_options, not replacing it).
        var injected = false
        if target == .openaiChat, streaming, body["stream_options"]?["include_usage"]?.boolValue != true {
            var options = body["stream_options"]?.objectValue ?? [:]
            options["include_usage"] = true
            body["stream_options"] = .object(options)
            injected = true
            changed = true
        }
        // 3. override.llm_options.max_tokens, forced, named per provider.
        if let maxTokens = instance.maxTokens, let field = instance.provider.maxTokensField[target] {
            if instance.provider.removesMaxTokensWhenMapping, field != "max_tokens", body["max_tokens"] != nil {
                body["max_tokens"] = nil
            }
            if let dot = field.firstIndex(of: ".") {  // Converse: inferenceConfig.maxTokens
                let outer = String(field[..<dot])
                var nested = body[outer]?.objectValue ?? [:]
                nested[String(field[field.index(after: dot)...])] = .int(maxTokens)
                body[outer] = .object(nested)
            } else {
                body[field] = .int(maxTokens)
            }
            changed = true
        }
        // 4. override.request_body, deep merge.
        if let extra = instance.requestBody[target] {
            let merged = deepMerge(body, extra, force: instance.forceOverride)
            if merged != body {
                body = merged
                changed = true
            }
        }
        // 5. Providers that take the model from the URL.
        if instance.provider.removesModel, body["model"] != nil {
            body["model"] = nil
            changed = true
        }
        // (`Optional(body)`: a bare `nil` here would become JSON null, JSONValue being nil-literal convertible.)
        return ShapedBody(body: changed ? Optional(body) : nil, injectedUsage: injected, streaming: streaming)
    }

    /// Objects merge recursively; other values replace only absent keys unless `force`.
    public static func deepMerge(_ target: JSONValue, _ extra: JSONValue, force: Bool) -> JSONValue {
        guard case .object(var result) = target, case .object(let additions) = extra else {
            return force ? extra : target
        }
        for (key, value) in additions {
            if let existing = result[key], case .object = existing, case .object = value {
                result[key] = deepMerge(existing, value, force: force)
            } else if result[key] == nil || force {
                result[key] = value
            }
        }
        return .object(result)
    }
}

/// OpenAI embeddings ⇄ Vertex AI's `:predict` (APISIX's `openai-embeddings → vertex-predict`).
public enum VertexTranslation {
    /// `{"input": "text" | ["text", ...]}` as `{"instances": [{"content": "text"}, ...]}`;
    /// OpenAI's `dimensions` becomes `parameters.outputDimensionality`.
    public static func predictRequest(fromEmbeddings body: JSONValue) -> JSONValue {
        let inputs: [JSONValue]
        switch body["input"] {
        case .array(let items)?: inputs = items
        case let single?: inputs = [single]
        case nil: inputs = []
        }
        var out: JSONObject = ["instances": .array(inputs.map { ["content": $0] })]
        if let dimensions = body["dimensions"]?.intValue {
            out["parameters"] = ["outputDimensionality": .int(dimensions)]
        }
        return .object(out)
    }

    /// `{"predictions": [{"embeddings": {"values": [...], "statistics": {"token_count": n}}}]}`
    /// as OpenAI's list of embeddings, the token counts summed into its usage.
    public static func embeddingsAnswer(fromPredict answer: JSONValue, model: String?) -> JSONValue {
        var data: [JSONValue] = []
        var tokens = 0
        for (index, prediction) in (answer["predictions"]?.arrayValue ?? []).enumerated() {
            let embeddings = prediction["embeddings"] ?? .null
            data.append([
                "object": "embedding", "index": .int(index), "embedding": embeddings["values"] ?? [],
            ])
            tokens = Saturating.count(tokens + (Saturating.count(embeddings["statistics"]?["token_count"]) ?? 0))
        }
        return [
            "object": "list", "data": .array(data), "model": model.map { .string($0) } ?? JSONValue.null,
            "usage": ["prompt_tokens": .int(tokens), "total_tokens": .int(tokens)],
        ]
    }
}

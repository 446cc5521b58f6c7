/// The arithmetic of the `semantic` balancer: cosine similarity between the request's
/// embedding and each instance's example embeddings, an instance scoring its best example, and
/// the pick of the best-scoring instance that clears its threshold.
public enum SemanticScorer {
    /// `vector` scaled to length 1; a zero (or non-finite) vector stays zeros, never NaN.
    public static func normalized(_ vector: [Double]) -> [Double] {
        var sum = 0.0
        for x in vector { sum += x * x }
        let norm = sum.squareRoot()
        guard norm > 0, norm.isFinite else { return Array(repeating: 0, count: vector.count) }
        return vector.map { $0 / norm }
    }

    /// The dot product of two normalized vectors of one length: their cosine similarity.
    public static func cosine(_ a: [Double], _ b: [Double]) -> Double {
        var sum = 0.0
        for i in 0..<min(a.count, b.count) { sum += a[i] * b[i] }
        return sum
    }

    /// Each instance's score, best first (ties keep configuration order): the best similarity of
    /// its examples, since examples are alternative phrasings of one intent and averaging would
    /// let a broad example dilute a dead-on one. `nil` when a vector's dimension differs from
    /// the query's (the embedding model changed under the cache): scores would mean nothing.
    public static func rank(query: [Double], examples: [[[Double]]]) -> [(index: Int, score: Double)]? {
        let q = normalized(query)
        var ranked: [(index: Int, score: Double)] = []
        for (index, vectors) in examples.enumerated() {
            var best: Double?
            for vector in vectors {
                guard vector.count == q.count else { return nil }
                let score = cosine(q, vector)
                if best.map({ score > $0 }) ?? true { best = score }
            }
            if let best { ranked.append((index, best)) }
        }
        // A stable sort: equal scores keep the configuration's order.
        return ranked.enumerated().sorted {
            $0.element.score != $1.element.score ? $0.element.score > $1.element.score : $0.offset < $1.offset
        }.map(\.element)
    }

    /// The best-ranked instance whose score reaches its threshold, or `nil` (then the fallback).
    public static func choose(_ ranked: [(index: Int, score: Double)], threshold: (Int) -> Double) -> Int? {
        ranked.first { $0.score >= threshold($0.index) }?.index
    }

    /// `name:0.9123,other:0.1000`, best first, for `X-AI-Semantic-Scores`.
    public static func header(_ ranked: [(index: Int, score: Double)], names: [String]) -> String {
        ranked.map { "\(names[$0.index]):\(fixed4($0.score))" }.joined(separator: ",")
    }

    /// Four decimals without Foundation's formatter (`-0.0500`, `1.0000`).
    static func fixed4(_ value: Double) -> String {
        guard value.isFinite else { return "0.0000" }
        let scaled = Int((abs(value) * 10000).rounded())
        let digits = String(scaled % 10000)
        let sign = value < 0 && scaled > 0 ? "-" : ""
        return "\(sign)\(scaled / 10000).\(String(repeating: "0", count: 4 - digits.count))\(digits)"
    }

    /// The text the request is routed by: its last user message (a string, or its text parts),
    /// or the `input` of an embeddings or Responses request.
    public static func routingText(_ body: JSONValue) -> String? {
        if let messages = body["messages"]?.arrayValue {
            guard let last = messages.last(where: { $0["role"]?.stringValue == "user" }) else { return nil }
            let content = last["content"] ?? .null
            let text = content.stringValue ?? AnthropicTranslation.texts(of: content).joined(separator: "\n")
            return text.isEmpty ? nil : text
        }
        if let input = body["input"]?.stringValue, !input.isEmpty { return input }
        return nil
    }
}

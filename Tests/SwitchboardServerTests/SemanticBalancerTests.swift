import Foundation
import SwitchboardCore
import Testing

/// The `semantic` balancer against a fake embeddings endpoint that maps topics to axes.
@Suite struct SemanticBalancerTests {
    /// `[1,0,0]` for code, `[0,1,0]` for translation, `[0,0,1]` for anything else; the texts it
    /// was asked to embed are recorded by the fake.
    static let embedder: @Sendable (FakeLLM.Seen) -> FakeLLM.Reply = { seen in
        let texts = seen.body["input"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let data: [JSONValue] = texts.enumerated().map { index, text in
            let vector: [JSONValue] =
                text.contains("python") || text.contains("code")
                ? [1, 0, 0] : text.contains("translat") ? [0, 1, 0] : [0, 0, 1]
            return ["object": "embedding", "index": .int(index), "embedding": .array(vector)]
        }
        let body: JSONValue = ["object": "list", "data": .array(data), "model": "embed-1"]
        return .json(status: 200, body: body.serialized())
    }

    static func plugin(_ embed: FakeLLM, _ f: AIFixture, extra: String = "", timeout: Int = 3000) -> String {
        let code = f.instance("code", f.a, model: "model-code", extra: #","examples":["write python code"]"#)
        let cheap = f.instance(
            "cheap", f.b, model: "model-cheap", extra: #","examples":["translate this text","translation please"]"#)
        return """
            {"balancer":{"algorithm":"semantic"},"fallback_strategy":["http_5xx"],
             "semantic_opts":{"embeddings":{"provider":"openai","model":"embed-1","endpoint":"\(embed.endpoint)",
               "auth":{"header":{"Authorization":"Bearer embed-key"}},"timeout":\(timeout)},
               "threshold":0.5,"fallback":"cheap","debugging":true\(extra)},
             "instances":[\(code),\(cheap)]}
            """
    }

    static func ask(_ f: AIFixture, _ text: String) async throws -> HTTPResult {
        try await f.chat(#"{"messages":[{"role":"user","content":"\#(text)"}]}"#)
    }

    @Test func requestsGoToTheInstanceTheirMessageIsAbout() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let embed = try await fx.own(FakeLLM.start(name: "embed"))
            embed.reply(Self.embedder)
            try await f.route(Self.plugin(embed, f))

            let code = try await Self.ask(f, "help me debug this python code")
            #expect(code.status == 200)
            #expect(code.headers.first(name: "X-AI-Semantic-Picked-Instance") == "code")
            #expect(code.headers.first(name: "X-AI-Semantic-Scores") == "code:1.0000,cheap:0.0000")
            let translate = try await Self.ask(f, "translate this to French")
            #expect(translate.headers.first(name: "X-AI-Semantic-Picked-Instance") == "cheap")
            #expect(translate.headers.first(name: "X-AI-Semantic-Scores") == "cheap:1.0000,code:0.0000")
            // Below every threshold: the fallback.
            let weather = try await Self.ask(f, "what is the weather like")
            #expect(weather.headers.first(name: "X-AI-Semantic-Picked-Instance") == "cheap")
            #expect(f.a.requests.map { $0.body["model"] } == ["model-code"])
            #expect(f.b.requests.map { $0.body["model"] } == ["model-cheap", "model-cheap"])

            // The examples were embedded once, in one call, then one call per request.
            let inputs = embed.requests.map { $0.body["input"] }
            #expect(
                inputs == [
                    ["translate this text", "translation please", "write python code"],
                    ["help me debug this python code"], ["translate this to French"], ["what is the weather like"],
                ])
            #expect(embed.requests.allSatisfy { $0.headers[.authorization] == "Bearer embed-key" })
            #expect(embed.requests.allSatisfy { $0.path == "/v1/embeddings" })

            // A changed configuration embeds only what the cache does not hold yet.
            try await f.route(
                Self.plugin(embed, f).replacingOccurrences(of: "translation please", with: "translate to German"))
            _ = try await Self.ask(f, "write some code")
            #expect(
                embed.requests.dropFirst(4).map { $0.body["input"] } == [["translate to German"], ["write some code"]])
        }
    }

    @Test func aFailingSlowOrChangedEmbedderSendsRequestsToTheFallback() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let embed = try await fx.own(FakeLLM.start(name: "embed"))
            embed.reply { _ in .json(status: 500, body: #"{"error":{"message":"down"}}"#) }
            try await f.route(Self.plugin(embed, f, timeout: 300))
            let failed = try await Self.ask(f, "python code please")
            #expect(failed.status == 200)
            #expect(failed.headers.first(name: "X-AI-Semantic-Picked-Instance") == "cheap")
            #expect(failed.headers.first(name: "X-AI-Semantic-Scores") == nil)

            // Silent past the timeout: the request does not wait for it (the gate never opens).
            embed.reply { _ in .gated(.json(status: 200, body: "{}")) }
            let slow = try await Self.ask(f, "python code please")
            #expect(slow.status == 200)
            #expect(slow.headers.first(name: "X-AI-Semantic-Picked-Instance") == "cheap")

            // Examples embedded with one model, the request with another dimension: fallback.
            embed.reply(Self.embedder)
            _ = try await Self.ask(f, "warm the cache")
            embed.reply { _ in .json(status: 200, body: #"{"data":[{"index":0,"embedding":[1,0]}]}"#) }
            let changed = try await Self.ask(f, "python code please")
            #expect(changed.headers.first(name: "X-AI-Semantic-Picked-Instance") == "cheap")
            #expect(f.a.requests.isEmpty)
            embed.openGate()
        }
    }

    @Test func theSemanticBalancerIsValidated() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            func put(_ plugin: String) async throws -> String? { try await gw.aiProxyMultiRefusal(plugin) }
            let instance = #"{"name":"x","provider":"openai","weight":1,"auth":{},"examples":["a"]}"#
            let opts = #""semantic_opts":{"embeddings":{"provider":"openai","model":"m","auth":{}}}"#
            #expect(
                try await put(#"{"balancer":{"algorithm":"semantic"},"instances":[\#(instance)]}"#)
                    == "semantic_opts is required when balancer algorithm is semantic")
            #expect(
                try await put(
                    #"{"balancer":{"algorithm":"semantic"},\#(opts),"instances":[{"name":"y","provider":"openai","weight":1,"auth":{}}]}"#
                ) == "instance 'y': examples are required when balancer algorithm is semantic")
            let badFallback = opts.replacingOccurrences(of: "}}}", with: "}},\"fallback\":\"z\"}")
            #expect(
                try await put(#"{"balancer":{"algorithm":"semantic"},\#(badFallback),"instances":[\#(instance)]}"#)
                    == "semantic_opts.fallback 'z' is not the name of an instance")
            #expect(try await put(#"{"balancer":{"algorithm":"semantic"},\#(opts),"instances":[\#(instance)]}"#) == nil)
            let stored = try await gw.admin(.GET, "/routes/checked")
            #expect(
                stored.json["value"]?["plugins"]?["ai-proxy-multi"]?["semantic_opts"]?["embeddings"]?["timeout"] == 3000
            )
        }
    }
}

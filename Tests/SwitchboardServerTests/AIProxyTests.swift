import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import SwitchboardCore
import Testing

/// Two fake providers and a gateway, torn down together.
struct AIFixture: Stoppable {
    let gw: TestGateway
    let a: FakeLLM
    let b: FakeLLM

    static func start(
        accessLog: TestAccessLog? = nil, configure: (inout GatewayConfig, URL) -> Void = { _, _ in }
    ) async throws -> AIFixture {
        AIFixture(
            gw: try await TestGateway.start(accessLog: accessLog, configure: configure),
            a: try await FakeLLM.start(name: "a"),
            b: try await FakeLLM.start(name: "b"))
    }

    func stop() async {
        await gw.stop()
        await a.stop()
        await b.stop()
    }

    /// Creates route `id` with ai-proxy-multi from a JSON snippet of the plugin config.
    func route(_ plugin: String, uri: String = "/anything", id: String = "ai") async throws {
        let body = #"{"uri":"\#(uri)","methods":["POST"],"plugins":{"ai-proxy-multi":\#(plugin)}}"#
        let result = try await gw.admin(.PUT, "/routes/\(id)", body)
        #expect(result.status == 201 || result.status == 200, "\(result.body)")
    }

    func instance(_ name: String, _ llm: FakeLLM, provider: String = "openai", model: String? = nil, extra: String = "")
        -> String
    {
        let options = model.map { #","options":{"model":"\#($0)"}"# } ?? ""
        return
            #"{"name":"\#(name)","provider":"\#(provider)","weight":1,"auth":{"header":{"Authorization":"Bearer k-\#(name)"}}\#(options),"override":{"endpoint":"\#(llm.endpoint)"}\#(extra)}"#
    }

    func chat(
        _ body: String = #"{"messages":[{"role":"user","content":"What is 1+1?"}]}"#, headers: [(String, String)] = []
    )
        async throws -> HTTPResult
    {
        try await gw.proxy(.POST, "/anything", body: body, headers: [("Content-Type", "application/json")] + headers)
    }
}

let mathBody = """
    {
    "messages": [
    { "role": "system", "content": "You are a mathematician" },
    { "role": "user", "content": "What is 1+1?" }
    ]
    }
    """

@Suite struct AIProxyRoutingTests {
    @Test func seedLoadBalanceExampleGivesEightToTwo() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            // The seed's route, with override.endpoint pointing at the local fakes.
            let route = """
                {
                "id": "ai-proxy-multi-route",
                "uri": "/anything",
                "methods": ["POST"],
                "plugins": {
                "ai-proxy-multi": {
                "instances": [
                {
                "name": "openai-instance",
                "provider": "openai",
                "weight": 8,
                "auth": {"header": {"Authorization": "Bearer sk-openai"}},
                "options": {"model": "gpt-4"},
                "override": {"endpoint": "\(f.a.endpoint)"}
                },
                {
                "name": "deepseek-instance",
                "provider": "deepseek",
                "weight": 2,
                "auth": {"header": {"Authorization": "Bearer sk-deepseek"}},
                "options": {"model": "deepseek-chat"},
                "override": {"endpoint": "\(f.b.endpoint)"}
                }
                ]
                }
                }
                }
                """
            #expect((try await f.gw.admin(.PUT, "/routes", route)).status == 201)
            var models: [String: Int] = [:]
            for _ in 0..<10 {
                let result = try await f.gw.proxy(
                    .POST, "/anything", body: mathBody, headers: [("Content-Type", "application/json")])
                #expect(result.status == 200)
                models[result.json["model"]?.stringValue ?? "?", default: 0] += 1
            }
            #expect(models == ["gpt-4": 8, "deepseek-chat": 2])
            #expect(f.a.requests.count == 8 && f.b.requests.count == 2)
            #expect(
                f.a.requests.allSatisfy {
                    $0.path == "/v1/chat/completions" && $0.headers[.authorization] == "Bearer sk-openai"
                })
            #expect(
                f.b.requests.allSatisfy {
                    $0.path == "/chat/completions" && $0.headers[.authorization] == "Bearer sk-deepseek"
                })
            // Without a stream the client's body is the same apart from the model.
            #expect(f.a.requests.first?.body["messages"]?.arrayValue?.count == 2)
        }
    }

    @Test func seedMaxTokensAndEmbeddingsExamples() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            try await f.route(
                """
                {"instances":[
                  {"name":"openai-instance","provider":"openai","weight":0,"auth":{"header":{"Authorization":"Bearer a"}},
                   "options":{"model":"gpt-4","max_tokens":50},"override":{"endpoint":"\(f.a.endpoint)"}},
                  {"name":"deepseek-instance","provider":"deepseek","weight":0,"auth":{"header":{"Authorization":"Bearer b"}},
                   "options":{"model":"deepseek-chat","max_tokens":100},"override":{"endpoint":"\(f.b.endpoint)"}}]}
                """)
            for _ in 0..<2 { #expect((try await f.chat()).status == 200) }
            #expect(f.a.requests.first?.body["max_tokens"] == 50)
            #expect(f.b.requests.first?.body["max_tokens"] == 100)

            try await f.route(
                """
                {"instances":[
                  {"name":"openai-instance","provider":"openai","weight":0,"auth":{"header":{"Authorization":"Bearer a"}},
                   "options":{"model":"text-embedding-3-small"},"override":{"endpoint":"\(f.a.endpoint)/v1/embeddings"}},
                  {"name":"az-openai-instance","provider":"openai-compatible","weight":0,"auth":{"header":{"Authorization":"Bearer b"}},
                   "options":{"model":"text-embedding-3-small"},
                   "override":{"endpoint":"\(f.b.endpoint)/openai/deployments/text-embedding-3-small/embeddings?api-version=2023-05-15"}}]}
                """)
            for _ in 0..<2 {
                let result = try await f.chat(#"{"input": "hello world"}"#)
                #expect(result.status == 200)
                #expect(result.json["object"] == "list")
                #expect(result.json["model"] == "text-embedding-3-small")
            }
            #expect(f.a.requests.last?.path == "/v1/embeddings")
            #expect(f.b.requests.last?.path == "/openai/deployments/text-embedding-3-small/embeddings")
            #expect(f.b.requests.last?.query == "api-version=2023-05-15")
        }
    }

    @Test(arguments: [
        ("openai", "/v1/chat/completions", "max_completion_tokens"),
        ("deepseek", "/chat/completions", "max_tokens"),
        ("aimlapi", "/chat/completions", "max_tokens"),
        ("anthropic", "/v1/messages", "max_tokens"),  // OpenAI chat goes to its native API
        ("openrouter", "/api/v1/chat/completions", "max_tokens"),
        ("gemini", "/v1beta/openai/chat/completions", "max_completion_tokens"),
        ("openai-compatible", "/v1/chat/completions", "max_tokens"),
        ("azure-openai", "/completions", "max_tokens"),
    ])
    func providerShapes(provider: String, path: String, maxTokensField: String) async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let plugin = """
                {"instances":[{"name":"p","provider":"\(provider)","weight":1,
                  "auth":{"header":{"Authorization":"Bearer conf","api-key":"az"},"query":{"key":"q1","shared":"auth"}},
                  "options":{"model":"m-1"},
                  "override":{"endpoint":"\(f.a.endpoint)?shared=endpoint","llm_options":{"max_tokens":7}}}]}
                """
            try await f.route(plugin)
            let result = try await f.chat(
                #"{"model":"client-model","max_tokens":99,"messages":[{"role":"user","content":"hi"}]}"#,
                headers: [("Authorization", "Bearer client"), ("Accept-Encoding", "gzip"), ("X-Custom", "c1")])
            #expect(result.status == 200)
            let seen = try #require(f.a.requests.first)
            #expect(seen.method == "POST")
            // With no path in the endpoint, the provider's path is used. (Azure's full URL normally has one.)
            #expect(seen.path == path)
            #expect(seen.query == "key=q1&shared=endpoint")
            #expect(seen.headers[.authorization] == "Bearer conf")
            #expect(seen.headers[.acceptEncoding] == nil)
            #expect(seen.headers[HTTPField.Name("x-custom")!] == "c1")
            #expect(seen.headers[.contentType] == "application/json")
            #expect(seen.body[maxTokensField] == 7)
            // Only openai's mapping removes the client's max_tokens.
            let expectedMaxTokens: JSONValue? = provider == "openai" ? nil : maxTokensField == "max_tokens" ? 7 : 99
            #expect(seen.body["max_tokens"] == expectedMaxTokens)
            #expect(seen.body["model"] == (provider == "azure-openai" ? nil : "m-1"))
        }
    }

    @Test func clientBytesAreForwardedVerbatimWhenNothingChanges() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            try await f.route(#"{"instances":[\#(f.instance("a", f.a))]}"#)
            let odd = "{ \"model\" : \"x\",\n  \"messages\":[ {\"role\":\"user\",\"content\":\"h\\u00e9\"} ] }"
            #expect((try await f.chat(odd)).status == 200)
            #expect(f.a.requests.first?.rawBody == odd)
            // The response body and the provider's hints come back; its request id under another name.
            let answer = try await f.chat(odd)
            #expect(answer.json["choices"]?[0]?["message"]?["content"] == "1+1 equals 2.")
            #expect(answer.headers.first(name: "x-upstream-request-id") == "req-a")
            #expect(answer.headers.first(name: "x-request-id")?.count == 32)
        }
    }

    @Test func requestIntakeErrors() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            try await f.route(#"{"max_req_body_size":100,"instances":[\#(f.instance("a", f.a))]}"#)
            let text = try await f.gw.proxy(.POST, "/anything", body: "{}", headers: [("Content-Type", "text/plain")])
            #expect(
                text.status == 400
                    && text.body == "unsupported content-type: text/plain, only application/json is supported")
            let bad = try await f.chat(#"{"messages": [}"#)
            #expect(bad.status == 400)
            #expect(
                bad.json["message"]?.stringValue?.hasPrefix("could not parse JSON request body: unexpected '}'") == true
            )
            let empty = try await f.chat("")
            #expect(empty.status == 400)
            let none = try await f.chat("{}")
            #expect(none.status == 400 && none.body == "no matching AI protocol for the request")
            let big = try await f.chat(
                #"{"messages":[{"role":"user","content":"\#(String(repeating: "x", count: 200))"}]}"#)
            #expect(big.status == 413)
            #expect(big.json["message"]?.stringValue?.hasSuffix("is greater than the maximum size 100 allowed") == true)
            #expect(f.a.requests.isEmpty)
            // A GET with a JSON body works too.
            #expect((try await f.gw.admin(.PATCH, "/routes/ai", #"{"methods":["GET","POST"]}"#)).status == 200)
            let get = try await f.gw.proxy(
                .GET, "/anything", body: #"{"messages":[]}"#, headers: [("Content-Type", "application/json")])
            #expect(get.status == 200)
        }
    }

    @Test func aiProxySingleProvider() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(
                    accessLog: .text(
                        "$request_type $llm_model $request_llm_model $llm_prompt_tokens $llm_completion_tokens $upstream_status"
                    )))
            let plugin = """
                {"provider":"openai","auth":{"header":{"Authorization":"Bearer x"}},"options":{"model":"gpt-4o"},
                 "override":{"endpoint":"\(f.a.endpoint)"}}
                """
            #expect(
                (try await f.gw.admin(.PUT, "/routes/single", #"{"uri":"/single","plugins":{"ai-proxy":\#(plugin)}}"#))
                    .status
                    == 201)
            let ok = try await f.gw.proxy(
                .POST, "/single", body: #"{"model":"gpt-3","messages":[{"role":"user","content":"x"}]}"#)
            #expect(ok.status == 200 && ok.json["model"] == "gpt-4o")
            f.a.reply { _ in .json(status: 500, body: #"{"error":{"message":"boom"}}"#) }
            let failed = try await f.gw.proxy(.POST, "/single", body: mathBody)
            #expect(failed.status == 500 && failed.json["error"]?["message"] == "boom")
            #expect(f.a.requests.count == 2)
            let log = try await f.gw.finalAccessLog()
            #expect(log.split(separator: "\n").first == "ai_chat gpt-4o gpt-3 23 8 200")
        }
    }
}

@Suite struct AIProxyValidationTests {
    @Test(arguments: [
        (
            #"{"instances":[{"name":"x","provider":"openai","weight":1,"auth":{}},{"name":"y","provider":"openai","weight":1,"auth":{}},{"name":"x","provider":"openai","weight":1,"auth":{}}]}"#,
            "duplicate instance name 'x' at instances[1] and instances[3]"
        ),
        (
            #"{"instances":[{"name":"x","provider":"openai","weight":1,"auth":{},"override":{"endpoint":"ftp://h"}}]}"#,
            "invalid endpoint"
        ),
        (
            #"{"instances":[{"name":"x","provider":"bogus","weight":1,"auth":{}}]}"#,
            #"property "instances" validation failed: failed to validate item 1: property "provider" validation failed: matches none of the enum values"#
        ),
        (
            #"{"instances":[{"name":"x","provider":"openai","auth":{}}]}"#,
            #"property "instances" validation failed: failed to validate item 1: property "weight" is required"#
        ),
        (
            #"{"fallback_http_statuses":[200],"instances":[{"name":"x","provider":"openai","weight":1,"auth":{}}]}"#,
            #"property "fallback_http_statuses" validation failed: failed to validate item 1: expected 200 to be at least 400"#
        ),
        (
            #"{"instances":[{"name":"x","provider":"openai","weight":1,"auth":{},"override":{"llm_options":{"temperature":1}}}]}"#,
            #"property "instances" validation failed: failed to validate item 1: property "override" validation failed: property "llm_options" validation failed: additional properties forbidden, found temperature"#
        ),
        (
            #"{"instances":[{"name":"x","provider":"openai","weight":1,"auth":{"Authorization":"k"}}]}"#,
            #"property "instances" validation failed: failed to validate item 1: property "auth" validation failed: additional properties forbidden, found Authorization"#
        ),
        (
            #"{"balancer":{"algorithm":"chash","hash_on":"header"},"instances":[{"name":"x","provider":"openai","weight":1,"auth":{}}]}"#,
            "must configure `hash_key` when balancer `hash_on` is not set to cookie"
        ),
        (#"{"instances":[]}"#, #"property "instances" validation failed: expect array to have at least 1 items"#),
    ])
    func apisixMessages(plugin: String, message: String) async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let result = try await gw.admin(.PUT, "/routes/v", #"{"uri":"/v","plugins":{"ai-proxy-multi":\#(plugin)}}"#)
            #expect(result.status == 400)
            #expect(
                result.json["error_msg"]
                    == .string("failed to check the configuration of plugin ai-proxy-multi err: \(message)"))
        }
    }

    @Test func defaultsAreStored() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let result = try await gw.admin(
                .PUT, "/routes/v",
                #"{"uri":"/v","plugins":{"ai-proxy-multi":{"instances":[{"name":"x","provider":"openai","weight":1,"auth":{}}]}}}"#
            )
            let stored = try #require(result.json["value"]?["plugins"]?["ai-proxy-multi"])
            #expect(stored["timeout"] == 30000 && stored["keepalive"] == true && stored["ssl_verify"] == true)
            #expect(stored["max_req_body_size"] == 67_108_864 && stored["keepalive_pool"] == 30)
            #expect(stored["balancer"] == ["algorithm": "roundrobin"])
            #expect(stored["instances"]?[0]?["priority"] == 0)
        }
    }
}

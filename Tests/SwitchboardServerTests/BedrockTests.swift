import Foundation
import SwitchboardCore
import Testing

@testable import SwitchboardServer

/// SigV4 against AWS's published test vectors and botocore's signatures (computed once with
/// botocore 1.44 for the same requests), then Bedrock end to end against a fake that verifies
/// every signature.
@Suite struct AWSSigV4Tests {
    let example = AWSAuth(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")

    func authorization(_ signed: AWSSigV4.Signed) -> String? {
        signed.headers.first { $0.name == "authorization" }?.value
    }

    @Test func awsPublishedVectors() {
        // aws-sig-v4-test-suite: get-vanilla and get-vanilla-query-order-key-case.
        let vanilla = AWSSigV4.sign(
            method: "GET", path: "/", query: nil, headers: [("host", "example.amazonaws.com")], body: [],
            service: "service", region: "us-east-1", credentials: example, amzDate: "20150830T123600Z")
        #expect(
            authorization(vanilla)
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        )
        let ordered = AWSSigV4.sign(
            method: "GET", path: "/", query: "Param2=value2&Param1=value1",
            headers: [("host", "example.amazonaws.com")],
            body: [], service: "service", region: "us-east-1", credentials: example, amzDate: "20150830T123600Z")
        #expect(
            authorization(ordered)
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        )
    }

    @Test func aBedrockRequestSignsAsBotocoreDoes() {
        // An encoded model id (its path signed encoded twice) and temporary credentials.
        var credentials = example
        credentials.sessionToken = "SESSIONTOKEN"
        let signed = AWSSigV4.sign(
            method: "POST", path: "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", query: nil,
            headers: [("content-type", "application/json"), ("host", "bedrock-runtime.us-east-1.amazonaws.com")],
            body: Array(#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#.utf8), service: "bedrock",
            region: "us-east-1", credentials: credentials, amzDate: "20150830T123600Z")
        #expect(
            authorization(signed)
                == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=71575eaadfec9fb51bf8aadd822087e03cecfa8a8a028065fe99d60f2febbfdf"
        )
        #expect(signed.headers.contains { $0 == ("x-amz-security-token", "SESSIONTOKEN") })
    }

    @Test func datesAreUTC() {
        #expect(AWSSigV4.amzDate(1_440_938_160) == "20150830T123600Z")
        #expect(AWSSigV4.amzDate(1_709_251_199) == "20240229T235959Z")
        #expect(AWSSigV4.amzDate(0) == "19700101T000000Z")
    }
}

@Suite struct BedrockTests {
    static let model = "anthropic.claude-3-haiku-20240307-v1:0"
    static let path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0"

    static func instance(_ llm: FakeLLM, secret: String = FakeLLM.awsCredentials.secretAccessKey, extra: String = "")
        -> String
    {
        """
        {"name":"bedrock","provider":"bedrock","weight":1,"provider_conf":{"region":"us-east-1"},
         "options":{"model":"\(model)"},"override":{"endpoint":"\(llm.endpoint)","llm_options":{"max_tokens":50}},
         "auth":{"aws":{"access_key_id":"AKIDEXAMPLE","secret_access_key":"\(secret)","session_token":"session-token-1"}}\(extra)}
        """
    }

    @Test func anOpenAIClientReachesBedrockThroughConverse() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(accessLog: .text("$llm_prompt_tokens $llm_completion_tokens $upstream_uri")))
            f.a.reply(FakeLLM.bedrock())
            try await f.route(#"{"instances":[\#(Self.instance(f.a))]}"#, uri: "/v1/*")
            let whole = try await f.gw.proxy(
                .POST, "/v1/chat/completions",
                body:
                    #"{"model":"ignored","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"What is 1+1?"}],"temperature":0.1}"#,
                headers: [("Authorization", "Bearer gateway-key")])
            #expect(whole.status == 200, "\(whole.body)")
            #expect(whole.json["choices"]?[0]?["message"] == ["role": "assistant", "content": "1+1 equals 2."])
            #expect(whole.json["usage"]?["total_tokens"] == 18)
            let seen = try #require(f.a.requests.first)
            #expect(seen.path == Self.path + "/converse")
            #expect(seen.body["system"] == [["text": "Be brief."]])
            #expect(seen.body["messages"] == [["role": "user", "content": [["text": "What is 1+1?"]]]])
            #expect(seen.body["inferenceConfig"] == ["maxTokens": 50, "temperature": 0.1])

            let streamed = try await f.gw.proxy(
                .POST, "/v1/chat/completions",
                body:
                    #"{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#
            )
            #expect(streamed.status == 200, "\(streamed.body)")
            #expect(streamed.headers.first(name: "content-type") == "text/event-stream")
            let chunks = dataLines(streamed.body)
            #expect(chunks.last == "[DONE]")
            let parsed = try chunks.dropLast().map { try JSONParser.parse($0) }
            #expect(
                parsed.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined() == "1+1 equals 2.")
            #expect(parsed.contains { $0["choices"]?[0]?["finish_reason"] == "stop" })
            #expect(parsed.last?["usage"]?["total_tokens"] == 18)
            #expect(f.a.requests.last?.path == Self.path + "/converse-stream")
            #expect(
                try await f.gw.finalAccessLog() == "12 6 \(Self.path)/converse\n12 6 \(Self.path)/converse-stream\n")
        }
    }

    @Test func aConverseClientIsPassedThroughNatively() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply(FakeLLM.bedrock())
            try await f.route(#"{"instances":[\#(Self.instance(f.a))]}"#, uri: "/bedrock/*")
            // A stream asked for by the URL, as AWS's SDKs ask; a client's own AWS header is dropped.
            let body = #"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#
            let result = try await HTTP.bytes(
                .POST, f.gw.proxyBase + "/bedrock/model/x/converse-stream", body: body,
                headers: [("x-amz-content-sha256", "client-value")])
            #expect(result.status == 200)
            #expect(result.headers.first(name: "content-type") == "application/vnd.amazon.eventstream")
            var decoder = EventStreamDecoder()
            let events = try decoder.feed(result.body)
            #expect(
                events.map(\.type) == [
                    "messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockDelta", "contentBlockDelta",
                    "contentBlockStop", "messageStop", "metadata",
                ])
            #expect(f.a.requests.first?.path == Self.path + "/converse-stream")
            #expect(f.a.requests.first?.body["inferenceConfig"] == ["maxTokens": 50])
            #expect(f.a.requests.first?.headers[.init("x-amz-content-sha256")!] == nil)
        }
    }

    @Test func aBadSignatureIsRefusedAndBedrockFallsBackToOpenAI() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply(FakeLLM.bedrock())
            try await f.route(#"{"instances":[\#(Self.instance(f.a, secret: "wrong-secret"))]}"#)
            let refused = try await f.chat()
            #expect(refused.status == 403)
            #expect(refused.json["message"]?.stringValue?.hasPrefix("The request signature we calculated") == true)

            f.a.reply { _ in .json(status: 503, body: #"{"message":"Too many connections, please wait."}"#) }
            let instances = #"[\#(Self.instance(f.a, extra: #","priority":1"#)),\#(f.instance("gpt", f.b))]"#
            try await f.route(#"{"fallback_strategy":["http_5xx"],"instances":\#(instances)}"#)
            let served = try await f.chat()
            #expect(served.status == 200)
            #expect(served.json["choices"]?[0]?["message"]?["content"] == "1+1 equals 2.")
            #expect(f.b.requests.count == 1)
        }
    }

    @Test func bedrockConfigurationIsValidated() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            func put(_ instance: String) async throws -> String? {
                try await gw.aiProxyMultiRefusal(#"{"instances":[\#(instance)]}"#)
            }
            #expect(
                try await put(#"{"name":"b","provider":"bedrock","weight":1,"auth":{}}"#)
                    == "instance 'b': bedrock requires provider_conf.region")
            #expect(
                try await put(
                    #"{"name":"b","provider":"bedrock","weight":1,"provider_conf":{"region":"eu-west-1"},"auth":{}}"#)
                    == "instance 'b': bedrock requires auth.aws")
        }
    }
}

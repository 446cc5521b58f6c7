import Crypto
import CryptoExtras
import Foundation
import SwitchboardCore
import Testing

/// Vertex AI against fakes that check what Google checks: a token endpoint that verifies the
/// service account's signed JWT with its public key, and a Vertex endpoint that wants the token.
@Suite struct VertexAITests {
    static let project = "proj-1"
    static let region = "us-central1"
    static let chatPath = "/v1beta1/projects/proj-1/locations/us-central1/endpoints/openapi/chat/completions"

    /// A service account with a fresh key, and a token endpoint that accepts only its JWTs.
    struct Google {
        let key: _RSA.Signing.PrivateKey
        let tokens: FakeLLM
        var accountJSON: String {
            let account: JSONValue = [
                "type": "service_account", "project_id": .string(VertexAITests.project),
                "client_email": "gateway@proj-1.iam.gserviceaccount.com",
                "private_key": .string(key.pkcs8PEMRepresentation), "token_uri": .string(tokens.endpoint + "/token"),
            ]
            return account.serialized()
        }

        /// Why Google would refuse this token request, or `nil`.
        static func refusal(_ seen: FakeLLM.Seen, publicKey: _RSA.Signing.PublicKey, audience: String) -> String? {
            var form: [String: String] = [:]
            for pair in seen.rawBody.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { form[parts[0]] = parts[1].removingPercentEncoding }
            }
            guard form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer", let jwt = form["assertion"]
            else {
                return "unsupported grant"
            }
            let parts = jwt.split(separator: ".").map(String.init)
            guard parts.count == 3, let header = decode(parts[0]), let claims = decode(parts[1]),
                let signature = decode(parts[2])
            else { return "malformed JWT" }
            let valid = publicKey.isValidSignature(
                _RSA.Signing.RSASignature(rawRepresentation: signature), for: Data((parts[0] + "." + parts[1]).utf8),
                padding: .insecurePKCS1v1_5)
            guard valid else { return "Invalid JWT Signature." }
            let head = try? JSONParser.parse(Array(header))
            let body = try? JSONParser.parse(Array(claims))
            guard head?["alg"] == "RS256" else { return "not RS256" }
            guard body?["aud"]?.stringValue == audience, body?["iss"] == "gateway@proj-1.iam.gserviceaccount.com",
                body?["scope"] == "https://www.googleapis.com/auth/cloud-platform",
                let iat = body?["iat"]?.intValue, let exp = body?["exp"]?.intValue, exp > iat
            else { return "bad claims" }
            return nil
        }

        static func decode(_ text: String) -> Data? {
            var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while base64.count % 4 != 0 { base64 += "=" }
            return Data(base64Encoded: base64)
        }

        static func start(expiresIn: Int = 3600) async throws -> Google {
            let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            let tokens = try await FakeLLM.start(name: "google")
            let publicKey = key.publicKey
            let audience = tokens.endpoint + "/token"
            tokens.reply { [tokens] seen in
                if let refusal = refusal(seen, publicKey: publicKey, audience: audience) {
                    return .json(status: 400, body: #"{"error":"invalid_grant","error_description":"\#(refusal)"}"#)
                }
                let token: JSONValue = [
                    "access_token": .string("ya29.token-\(tokens.requests.count)"), "expires_in": .int(expiresIn),
                    "token_type": "Bearer",
                ]
                return .json(status: 200, body: token.serialized())
            }
            return Google(key: key, tokens: tokens)
        }
    }

    /// Answers like Vertex: chat (OpenAI-shaped) and `:predict`, only with the right token.
    static func vertex(token: String) -> @Sendable (FakeLLM.Seen) -> FakeLLM.Reply {
        { seen in
            guard seen.headers[.authorization] == "Bearer \(token)" else {
                return .json(
                    status: 401,
                    body:
                        #"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#
                )
            }
            if seen.path.hasSuffix(":predict") {
                let count = seen.body["instances"]?.arrayValue?.count ?? 0
                let predictions: [JSONValue] = (0..<count).map { i in
                    [
                        "embeddings": [
                            "values": [0.5, .double(Double(i))], "statistics": ["token_count": 4, "truncated": false],
                        ]
                    ]
                }
                return .json(status: 200, body: (["predictions": .array(predictions)] as JSONValue).serialized())
            }
            return .json(status: 200, body: FakeLLM.completion(model: seen.body["model"]?.stringValue ?? "gemini"))
        }
    }

    static func instance(_ f: AIFixture, _ google: Google, extra: String = "") -> String {
        let account = JSONValue.string(google.accountJSON).serialized()
        return """
            {"name":"v","provider":"vertex-ai","weight":1,"provider_conf":{"project_id":"\(project)","region":"\(region)"},
             "auth":{"gcp":{"service_account_json":\(account)\(extra)}},"override":{"endpoint":"\(f.a.endpoint)"}}
            """
    }

    @Test func chatAndEmbeddingsReachVertexWithATokenFromTheServiceAccount() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(accessLog: .text("$llm_prompt_tokens $llm_total_tokens $upstream_uri")))
            let google = try await Google.start()
            _ = fx.own(google.tokens)
            f.a.reply(Self.vertex(token: "ya29.token-1"))
            try await f.route(#"{"instances":[\#(Self.instance(f, google))]}"#, uri: "/v1/*")

            let chat = try await f.gw.proxy(
                .POST, "/v1/chat/completions",
                body: #"{"model":"google/gemini-2.0-flash","messages":[{"role":"user","content":"hi"}]}"#,
                headers: [("Authorization", "Bearer gateway-key")])
            #expect(chat.status == 200, "\(chat.body)")
            #expect(f.a.requests.first?.path == Self.chatPath)

            let embeddings = try await f.gw.proxy(
                .POST, "/v1/embeddings", body: #"{"model":"text-embedding-005","input":["one","two"],"dimensions":2}"#)
            #expect(embeddings.status == 200, "\(embeddings.body)")
            #expect(
                embeddings.json
                    == [
                        "object": "list",
                        "data": [
                            ["object": "embedding", "index": 0, "embedding": [0.5, 0.0]],
                            ["object": "embedding", "index": 1, "embedding": [0.5, 1.0]],
                        ],
                        "model": "text-embedding-005", "usage": ["prompt_tokens": 8, "total_tokens": 8],
                    ])
            let predict = try #require(f.a.requests.last)
            #expect(
                predict.path
                    == "/v1/projects/proj-1/locations/us-central1/publishers/google/models/text-embedding-005:predict")
            #expect(
                predict.body
                    == [
                        "instances": [["content": "one"], ["content": "two"]],
                        "parameters": ["outputDimensionality": 2],
                    ])
            // One token for both calls.
            #expect(google.tokens.requests.count == 1)
            let log = try await f.gw.finalAccessLog()
            #expect(
                log.hasSuffix(
                    "8 8 /v1/projects/proj-1/locations/us-central1/publishers/google/models/text-embedding-005:predict\n"
                ))
        }
    }

    @Test func concurrentRequestsShareOneTokenFetch() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let google = try await Google.start()
            _ = fx.own(google.tokens)
            let verify = google.tokens
            let key = google.key.publicKey
            let audience = google.tokens.endpoint + "/token"
            // Tokens are held at the gate until every request waits for one.
            verify.reply { seen in
                if let refusal = Google.refusal(seen, publicKey: key, audience: audience) {
                    return .json(status: 400, body: #"{"error":"\#(refusal)"}"#)
                }
                return .gated(.json(status: 200, body: #"{"access_token":"ya29.shared","expires_in":3600}"#))
            }
            f.a.reply(Self.vertex(token: "ya29.shared"))
            try await f.route(#"{"instances":[\#(Self.instance(f, google))]}"#)
            let requests = (0..<8).map { _ in Task { try await f.chat() } }
            #expect(try await eventually { try await f.gw.sample("apisix_llm_active_connections", ["node": "v"]) == 8 })
            verify.openGate()
            for request in requests { #expect(try await request.value.status == 200) }
            #expect(verify.requests.count == 1)
            #expect(f.a.requests.count == 8)
        }
    }

    @Test func aRefusedTokenIsA502NamingTheTokenEndpointAndAnExpiredOneIsRenewed() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            // A token living 1 s is renewed after half its life at most: each request here gets a
            // new one. (A longer token with a larger expire_early_secs is kept for half its life.)
            let google = try await Google.start(expiresIn: 1)
            _ = fx.own(google.tokens)
            let other = try _RSA.Signing.PrivateKey(keySize: .bits2048)  // not the account's key
            let forged = Google(key: other, tokens: google.tokens)
            f.a.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "m")) }
            try await f.route(#"{"instances":[\#(Self.instance(f, forged))]}"#)
            let refused = try await f.chat()
            #expect(refused.status == 502)
            #expect(
                refused.json["error"]?["message"]
                    == .string(
                        "could not get a GCP access token from \(google.tokens.endpoint)/token: status 400: Invalid JWT Signature."
                    ))
            #expect(refused.json["error"]?["code"] == "gcp_auth_failed")
            #expect(f.a.requests.isEmpty)

            try await f.route(#"{"instances":[\#(Self.instance(f, google))]}"#)
            #expect(try await f.chat().status == 200)
            #expect(try await f.chat().status == 200)
            #expect(google.tokens.requests.count == 3)  // the refused one, then one per request
            #expect(f.a.requests.map { $0.headers[.authorization] } == ["Bearer ya29.token-2", "Bearer ya29.token-3"])
        }
    }

    @Test func vertexConfigurationIsValidated() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            func put(_ instance: String) async throws -> String? {
                try await gw.aiProxyMultiRefusal(#"{"instances":[\#(instance)]}"#)
            }
            #expect(
                try await put(#"{"name":"v","provider":"vertex-ai","weight":1,"auth":{}}"#)
                    == "instance 'v': vertex-ai requires either provider_conf (project_id + region) or override.endpoint"
            )
            #expect(
                try await put(
                    #"{"name":"v","provider":"vertex-ai","weight":1,"provider_conf":{"project_id":"p","region":"r"},"auth":{"gcp":{"service_account_json":"{not json"}}}"#
                )?.hasPrefix("invalid gcp service_account_json: ") == true)
            #expect(
                try await put(
                    #"{"name":"v","provider":"vertex-ai","weight":1,"override":{"endpoint":"https://aiplatform.example.com"},"auth":{}}"#
                ) == nil)
        }
    }
}

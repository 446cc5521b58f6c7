import Testing

@testable import SwitchboardCore

@Suite struct VertexTranslationTests {
    @Test func embeddingsBecomePredictionsAndBack() throws {
        #expect(
            VertexTranslation.predictRequest(fromEmbeddings: try JSONParser.parse(#"{"model":"m","input":"one"}"#))
                == ["instances": [["content": "one"]]])
        let answer = try JSONParser.parse(
            #"{"predictions":[{"embeddings":{"values":[0.1,0.2],"statistics":{"token_count":3,"truncated":false}}},{"embeddings":{"values":[0.3],"statistics":{"token_count":2.0}}}]}"#
        )
        #expect(
            VertexTranslation.embeddingsAnswer(fromPredict: answer, model: "m")
                == [
                    "object": "list",
                    "data": [
                        ["object": "embedding", "index": 0, "embedding": [0.1, 0.2]],
                        ["object": "embedding", "index": 1, "embedding": [0.3]],
                    ],
                    "model": "m", "usage": ["prompt_tokens": 5, "total_tokens": 5],
                ])
    }

    @Test func pathsAreFilledFromProviderConfAndTheModel() throws {
        let instance = AIInstance(
            json: try JSONParser.parse(
                #"{"name":"v","provider":"vertex-ai","weight":1,"auth":{},"provider_conf":{"project_id":"p 1","region":"europe-west4"}}"#
            ))
        #expect(instance.resolvedEndpoint?.host == "europe-west4-aiplatform.googleapis.com")
        #expect(
            instance.path(for: .openaiChat, model: nil)
                == "/v1beta1/projects/p%201/locations/europe-west4/endpoints/openapi/chat/completions")
        #expect(
            instance.path(for: .vertexPredict, model: "text/embedding")
                == "/v1/projects/p%201/locations/europe-west4/publishers/google/models/text%2Fembedding:predict")
        #expect(instance.path(for: .vertexPredict, model: nil) == nil)
        #expect(instance.target(for: .openaiEmbeddings) == .vertexPredict)
    }

    @Test func serviceAccountsSayWhatIsMissing() {
        #expect(throws: SchemaError("client_email is missing")) { try GCPServiceAccount(json: #"{"private_key":"x"}"#) }
        #expect(throws: SchemaError("private_key is missing or not a PEM private key")) {
            try GCPServiceAccount(json: #"{"client_email":"a@b"}"#)
        }
        let account = try? GCPServiceAccount(
            json: #"{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n"}"#
        )
        #expect(account?.tokenURI == "https://oauth2.googleapis.com/token")
    }
}

import Foundation
import HTTPTypes
import SwitchboardCore

@testable import SwitchboardServer

/// Amazon Bedrock's Converse API: refuses a request whose SigV4 signature it cannot reproduce
/// with the account's secret (as AWS does, 403), and answers a Converse message or a
/// ConverseStream in AWS's binary event stream framing.
extension FakeLLM {
    static let awsCredentials = AWSAuth(
        accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        sessionToken: "session-token-1")

    /// Why AWS would refuse this request's signature, or `nil`.
    static func sigV4Refusal(_ seen: Seen, region: String, credentials: AWSAuth) -> String? {
        func header(_ name: String) -> String? { seen.headers[HTTPField.Name(name)!] }
        guard let authorization = header("authorization"), let date = header("x-amz-date"),
            let host = seen.authority ?? header("host"), let contentType = header("content-type")
        else { return "Missing Authentication Token" }
        if credentials.sessionToken != nil, header("x-amz-security-token") != credentials.sessionToken {
            return "The security token included in the request is invalid."
        }
        let expected = AWSSigV4.sign(
            method: seen.method, path: seen.path, query: seen.query,
            headers: [("content-type", contentType), ("host", host)], body: Array(seen.rawBody.utf8),
            service: "bedrock", region: region, credentials: credentials, amzDate: date)
        guard authorization == expected.headers.first(where: { $0.name == "authorization" })?.value else {
            return "The request signature we calculated does not match the signature you provided."
        }
        return nil
    }

    static func converseFrame(_ type: String, _ payload: JSONValue) -> [UInt8] {
        EventStreamDecoder.encode(
            headers: [(":event-type", type), (":content-type", "application/json"), (":message-type", "event")],
            payload: payload.serializedBytes())
    }

    static let converseUsage: JSONValue = ["inputTokens": 12, "outputTokens": 6, "totalTokens": 18]

    /// messageStart, a text block with a delta per word, messageStop, metadata (usage).
    static func converseStream(words: [String]) -> [[UInt8]] {
        var frames = [
            converseFrame("messageStart", ["role": "assistant"]),
            converseFrame("contentBlockStart", ["contentBlockIndex": 0, "start": [:]]),
        ]
        frames += words.map {
            converseFrame("contentBlockDelta", ["contentBlockIndex": 0, "delta": ["text": .string($0)]])
        }
        frames.append(converseFrame("contentBlockStop", ["contentBlockIndex": 0]))
        frames.append(converseFrame("messageStop", ["stopReason": "end_turn"]))
        frames.append(converseFrame("metadata", ["usage": converseUsage, "metrics": ["latencyMs": 100]]))
        return frames
    }

    static func bedrock(region: String = "us-east-1", credentials: AWSAuth = awsCredentials)
        -> @Sendable (Seen) -> Reply
    {
        { seen in
            if let refusal = sigV4Refusal(seen, region: region, credentials: credentials) {
                return .json(status: 403, body: #"{"message":"\#(refusal)"}"#)
            }
            guard seen.body["messages"]?.arrayValue != nil, seen.body["model"] == nil, seen.body["stream"] == nil
            else {
                return .json(status: 400, body: #"{"message":"Malformed input request: extraneous key"}"#)
            }
            if seen.path.hasSuffix("/converse-stream") {
                return .chunks(
                    converseStream(words: ["1+1", " equals", " 2."]), contentType: "application/vnd.amazon.eventstream")
            }
            let answer: JSONValue = [
                "output": ["message": ["role": "assistant", "content": [["text": "1+1 equals 2."]]]],
                "stopReason": "end_turn", "usage": converseUsage, "metrics": ["latencyMs": 100],
            ]
            return .json(status: 200, body: answer.serialized())
        }
    }
}

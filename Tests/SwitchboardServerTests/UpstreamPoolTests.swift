import Foundation
import Testing

/// The gateway's own connection pool for plain-HTTP upstreams of AI routes: connections are
/// reused, and one the upstream closed (announced or not) never costs a request.
@Suite struct UpstreamPoolTests {
    func served(by raw: RawUpstream, _ fx: Fixtures) async throws -> AIFixture {
        let f = try await fx.own(AIFixture.start())
        try await f.route(
            #"{"instances":[{"name":"raw","provider":"openai","weight":1,"auth":{},"override":{"endpoint":"\#(raw.endpoint)"}}]}"#
        )
        return f
    }

    @Test func sequentialRequestsShareOneConnection() async throws {
        try await withFixture { fx in
            let raw = fx.own(try RawUpstream(mode: .keepAlive(body: FakeLLM.completion(model: "raw"))))
            let f = try await served(by: raw, fx)
            for _ in 0..<3 {
                let result = try await f.chat()
                #expect(result.status == 200 && result.json["model"] == "raw")
            }
            #expect(raw.requests == 3)
            #expect(raw.connections == 1)
        }
    }

    /// The upstream closes each connection after one answer without saying so (its keep-alive
    /// timeout): the next request still gets its answer, sent once, on a new connection.
    @Test(arguments: [false, true])
    func aConnectionTheUpstreamClosedIsNotUsedAgain(announced: Bool) async throws {
        try await withFixture { fx in
            let raw = fx.own(
                try RawUpstream(
                    mode: .keepAlive(body: FakeLLM.completion(model: "raw"), closeAfter: 1, announceClose: announced)))
            let f = try await served(by: raw, fx)
            for _ in 0..<3 {
                let result = try await f.chat()
                #expect(result.status == 200 && result.json["model"] == "raw", "\(result.body)")
            }
            #expect(raw.requests == 3)
            #expect(raw.connections == 3)
        }
    }

    /// A pooled connection that fails before any byte of the answer (here: the upstream resets it
    /// on the second request, as when its keep-alive timeout and the request cross) is tried once
    /// more on a new connection by the pool itself, with no retry configured on the route.
    @Test func aPooledConnectionThatFailsBeforeAnsweringIsReplacedOnce() async throws {
        try await withFixture { fx in
            let raw = fx.own(try RawUpstream(mode: .serveThenReset(body: FakeLLM.completion(model: "raw"))))
            let f = try await served(by: raw, fx)
            for _ in 0..<2 {
                let result = try await f.chat()
                #expect(result.status == 200 && result.json["model"] == "raw", "\(result.body)")
            }
            #expect(raw.requests == 3)
            #expect(raw.connections == 2)
        }
    }
}

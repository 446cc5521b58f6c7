import AsyncHTTPClient
import Foundation
import NIOCore
import SwitchboardCore
import Testing

@testable import SwitchboardServer

/// Issue 18: the gateway survives deploys (a drain with a deadline, probes) and hostile or
/// broken clients on the proxy port (slow heads, stalled bodies, oversized heads, smuggling
/// shapes, connection floods). Raw sockets show what HTTP clients would hide.
@Suite struct HardeningTests {
    // MARK: - Drain

    /// Two streams and a request in flight at the stop: the gateway is not ready any more and
    /// takes no new connections; the stream whose upstream finishes within the drain ends
    /// normally; at the deadline the other ends with an in-band `shutdown` error (no `[DONE]`)
    /// and the request still waiting is answered 503. Quota reservations are settled and
    /// access-log lines written for all three.
    @Test func drainFinishesWhatItCanThenEndsTheRestInBand() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(accessLog: .text("$uri $status $llm_completion_tokens")) { config, _ in
                    config.drainTimeoutMs = 1500
                })
            let c = try await fx.own(FakeLLM.start(name: "c"))
            f.a.reply { _ in
                .sse(
                    events: FakeLLM.chatStream(model: "m", words: ["one", " two", " three"], includeUsage: true),
                    gateAfter: 2)
            }
            f.b.reply { _ in
                // Role, two words, then silence: no finish, no [DONE].
                .sse(
                    events: Array(
                        FakeLLM.chatStream(model: "m", words: ["alpha", " beta"], includeUsage: false).prefix(3)),
                    end: .hang)
            }
            c.reply { _ in .hang }
            let limit = #","ai-rate-limiting":{"limit":100000,"time_window":60}"#
            for (id, llm) in [("a", f.a), ("b", f.b), ("c", c)] {
                let route =
                    #"{"uri":"/\#(id)","plugins":{"ai-proxy-multi":{"instances":[\#(f.instance(id, llm))]}\#(limit)}}"#
                #expect((try await f.gw.admin(.PUT, "/routes/\(id)", route)).status == 201)
            }
            let ready = try await HTTP.send(.GET, f.gw.controlBase + "/v1/ready")
            #expect(ready.status == 200 && ready.json["status"] == "ready")
            #expect((try await HTTP.send(.GET, f.gw.controlBase + "/v1/healthz")).status == 200)

            let finishing = try await f.gw.openStream("/a", body: streamBody)
            let cut = try await f.gw.openStream("/b", body: streamBody)
            let waiting = Task { try await f.gw.proxy(.POST, "/c", body: mathBody, headers: jsonHeader) }
            #expect(await eventually { c.requests.count == 1 })
            var firstIterator = finishing.body.makeAsyncIterator()
            var first = ""
            while !first.contains("one"), let chunk = try await firstIterator.next() { first += String(buffer: chunk) }
            var cutIterator = cut.body.makeAsyncIterator()
            var second = ""
            while !second.contains("beta"), let chunk = try await cutIterator.next() { second += String(buffer: chunk) }

            let proxyPort = try f.gw.port("proxy0")
            let stopping = Task { await f.gw.gateway.stop() }
            #expect(await eventually { (try? await HTTP.send(.GET, f.gw.controlBase + "/v1/ready"))?.status == 503 })
            let draining = try await HTTP.send(.GET, f.gw.controlBase + "/v1/ready")
            #expect(draining.json["reason"] == "draining")
            #expect(await eventually { (try? RawClient(port: proxyPort)) == nil }, "new connections are still accepted")

            // Within the drain: the first stream's upstream goes on and it ends normally.
            f.a.openGate()
            while let chunk = try await firstIterator.next() { first += String(buffer: chunk) }
            #expect(dataLines(first).last == "[DONE]")
            #expect(first.contains("three"))
            // At the deadline: the second ends with the in-band error, without [DONE].
            while let chunk = try await cutIterator.next() { second += String(buffer: chunk) }
            let last = try JSONParser.parse(try #require(dataLines(second).last))
            #expect(last["error"]?["code"] == "shutdown", "\(second)")
            #expect(!second.contains("[DONE]"))
            let answer = try await waiting.value
            #expect(answer.status == 503)
            #expect(answer.json["error_msg"] == "the gateway is shutting down")
            await stopping.value

            let log = try await f.gw.finalAccessLog()
            #expect(log.contains("/a 200 8"), "\(log)")
            #expect(log.contains("/b 200"), "\(log)")
            #expect(log.contains("/c 503"), "\(log)")
            // Every reservation was settled or released: nothing is held for the three routes.
            let services = await f.gw.gateway.manager.compiler.services
            let counters = services.quotaBoard.list(now: Date().timeIntervalSince1970) { key, window, _ in
                services.quotas.peek(key, window: window)
            }
            #expect(counters.count == 3)
            #expect(counters.allSatisfy { $0["reserved"] == 0 }, "\(counters)")
        }
    }

    // MARK: - Hostile clients

    /// A head that trickles in (slowloris) is cut at `header_timeout_ms`; an idle keep-alive
    /// connection that has sent nothing is not (the idle timeout governs it), and serves.
    @Test func aSlowHeadIsCutButAnIdleConnectionIsNot() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start { config, _ in config.clientLimits.headerTimeoutMs = 300 })
            let port = try gw.port("proxy0")
            let idle = try RawClient(port: port)
            let slow = try RawClient(port: port)
            slow.send("GET /anything HTTP/1.1\r\nHost: x\r\n")
            // Nothing is answered: the connection is closed.
            #expect(await slow.read(until: "never") == "")
            idle.send("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await idle.read(until: "Route Not Found").hasPrefix("HTTP/1.1 404"))
        }
    }

    /// A client that pipelines a second head after a `Connection: close` request and goes
    /// silent does not hold its connection (and a `max_connections` slot): the gateway answers
    /// the first and closes.
    @Test func aHalfSentRequestAfterConnectionCloseDoesNotHoldTheConnection() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let client = try RawClient(port: try gw.port("proxy0"))
            client.send(
                "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /nothing HTTP/1.1\r\nHost: x\r\n")
            let (text, closed) = await client.readToClose()
            #expect(closed, "the connection is still open: \(text)")
            #expect(text.hasPrefix("HTTP/1.1 404") && text.components(separatedBy: "HTTP/1.1 ").count == 2)
            #expect(await eventually { gw.gateway.connections.current == 0 })
        }
    }

    /// A body that stops arriving while the gateway reads it is cut at `body_timeout_ms`; the
    /// upstream never sees the request.
    @Test func aStalledBodyIsCut() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start { config, _ in config.clientLimits.bodyTimeoutMs = 300 })
            try await f.route(#"{"instances":[\#(f.instance("a", f.a))]}"#)
            let client = try RawClient(port: try f.gw.port("proxy0"))
            client.send(
                "POST /anything HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"messages\":"
            )
            let answer = await client.read(until: "never")
            #expect(!answer.contains("HTTP/1.1 2"))
            #expect(f.a.requests.isEmpty)
        }
    }

    /// Oversized heads are answered 431 and closed: one huge field, too many fields, a huge
    /// request target. The gateway serves the next client.
    @Test func oversizedHeadsAre431() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let port = try gw.port("proxy0")
            let heads = [
                "GET /anything HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 40_000))\r\n\r\n",
                "GET /anything HTTP/1.1\r\nHost: x\r\n" + (0..<150).map { "X-H\($0): v\r\n" }.joined() + "\r\n",
                "GET /\(String(repeating: "p", count: 40_000)) HTTP/1.1\r\nHost: x\r\n\r\n",
            ]
            for head in heads {
                let client = try RawClient(port: port)
                client.send(head)
                let answer = await client.read(until: "never")
                #expect(answer.hasPrefix("HTTP/1.1 431"), "\(answer.prefix(200))")
                #expect(answer.contains("connection: close") || answer.contains("Connection: close"))
                #expect(answer.contains("request header fields too large"))
            }
            #expect((try await gw.proxy(.GET, "/nothing")).status == 404)
        }
    }

    /// Request smuggling shapes: each answered 400 naming the problem, then the connection is
    /// closed (nothing after the bad bytes is read as another request).
    @Test func smugglingShapesAre400AndClose() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            try await f.route(#"{"instances":[\#(f.instance("a", f.a))]}"#)
            let port = try f.gw.port("proxy0")
            let smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
            let cases: [(String, String)] = [
                (
                    "POST /anything HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                        + smuggled, "malformed request"
                ),
                (
                    "POST /anything HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
                        + smuggled,
                    "Content-Length"
                ),
                ("POST /anything HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\nhello" + smuggled, "Content-Length"),
                // The route reads the body: its handler answers (no more 500).
                (
                    "POST /anything HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\nzz\r\n"
                        + smuggled, "invalid chunk size"
                ),
            ]
            for (request, named) in cases {
                let client = try RawClient(port: port)
                client.send(request)
                let answer = await client.read(until: "never")
                #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer.prefix(300))")
                #expect(answer.contains(named), "\(answer)")
                #expect(answer.components(separatedBy: "HTTP/1.1 ").count == 2, "one answer only: \(answer)")
            }
            // A route that answers without reading the body: one answer, then the close.
            let client = try RawClient(port: port)
            client.send(
                "POST /nothing HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n" + smuggled)
            let answer = await client.read(until: "never")
            #expect(answer.hasPrefix("HTTP/1.1 404"))
            #expect(answer.components(separatedBy: "HTTP/1.1 ").count == 2, "one answer only: \(answer)")
            #expect(f.a.requests.isEmpty)
        }
    }

    /// Bodies that are not UTF-8, or nested deeper than the parser's limit, are 400s that name
    /// the problem; the upstream never sees them.
    @Test func nonUTF8AndDeepJSONAre400() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            try await f.route(#"{"instances":[\#(f.instance("a", f.a))]}"#)
            let port = try f.gw.port("proxy0")
            var body: [UInt8] = Array(#"{"messages":[{"role":"user","content":""#.utf8) + [0xFF, 0xFE]
            body += Array(#""}]}"#.utf8)
            let client = try RawClient(port: port)
            client.send(
                "POST /anything HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
            )
            client.sendBytes(body)
            let answer = await client.read(until: "}\n")
            #expect(answer.hasPrefix("HTTP/1.1 400"), "\(answer)")
            #expect(answer.contains("invalid UTF-8"), "\(answer)")
            let deep = String(repeating: "[", count: 10_000)
            let nested = try await f.chat(deep)
            #expect(nested.status == 400)
            #expect(nested.body.contains("nesting deeper than 256 levels"), "\(nested.body)")
            #expect(f.a.requests.isEmpty)
        }
    }

    /// Over `proxy.max_connections`, a new connection is answered 503 and closed; the ones
    /// open still serve, and once one closes a new one is admitted.
    @Test func connectionsOverTheLimitAreRefusedWithoutHurtingOpenOnes() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start { config, _ in config.clientLimits.maxConnections = 2 })
            let port = try gw.port("proxy0")
            let one = try RawClient(port: port)
            let two = try RawClient(port: port)
            one.send("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await one.read(until: "Route Not Found").hasPrefix("HTTP/1.1 404"))
            #expect(await eventually { gw.gateway.connections.current == 2 })
            let three = try RawClient(port: port)
            let refused = await three.read(until: "never")
            #expect(refused.hasPrefix("HTTP/1.1 503"), "\(refused)")
            #expect(refused.contains("too many open connections"))
            two.send("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(await two.read(until: "Route Not Found").hasPrefix("HTTP/1.1 404"))
            one.reset()
            #expect(await eventually { gw.gateway.connections.current == 1 })
            #expect((try await gw.proxy(.GET, "/nothing")).status == 404)
        }
    }
}

let jsonHeader = [("Content-Type", "application/json")]

/// Operations: the SQLite store can be backed up online with the `sqlite3` CLI's `.backup`
/// while the gateway serves and writes, and a gateway started on the copy has every route.
@Suite struct OnlineBackupTests {
    @Test func anOnlineBackupWhileServingRestoresEveryRoute() async throws {
        try await withFixture { fx in
            let gw = try await fx.own(TestGateway.start())
            let route = { (i: Int) in
                #"{"uri":"/r\#(i)","plugins":{"mocking":{"response_example":"r\#(i)","content_type":"text/plain"}}}"#
            }
            for i in 0..<20 { #expect((try await gw.admin(.PUT, "/routes/r\(i)", route(i))).status == 201) }
            // Writes and traffic go on while the backup runs.
            let busy = Task {
                var i = 20
                while !Task.isCancelled {
                    _ = try? await gw.admin(.PUT, "/routes/r\(i)", route(i))
                    _ = try? await gw.proxy(.GET, "/r0")
                    i += 1
                }
                return i
            }
            let database = gw.directory.appendingPathComponent("switchboard.db").path
            let copyDirectory = TestGateway.makeDirectory()
            let copy = copyDirectory.appendingPathComponent("switchboard.db").path
            let backup = try await Spawned.finish("sqlite3", [database, ".backup '\(copy)'"])
            busy.cancel()
            _ = await busy.value
            #expect(backup.status == 0, "\(backup.stderr)")
            let check = try await Spawned.finish("sqlite3", [copy, "PRAGMA integrity_check"])
            #expect(check.stdout == "ok\n", "\(check.stdout) \(check.stderr)")
            let restored = try await fx.own(TestGateway.start(directory: copyDirectory))
            let list = try await restored.admin(.GET, "/routes")
            #expect((list.json["total"]?.intValue ?? 0) >= 20, "\(list.body)")
            for i in [0, 19] {
                let answer = try await restored.proxy(.GET, "/r\(i)")
                #expect(answer.status == 200 && answer.body == "r\(i)")
            }
        }
    }
}

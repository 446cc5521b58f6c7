import Foundation
import NIOHTTP1
import SwitchboardCore
import Synchronization
import Testing

/// Issue 8: every fault a provider can produce, what the client receives, how many attempts
/// each instance saw and when, and how long the request took. Time bounds are the behaviour
/// under test (a wait of at least `Retry-After`; a silent upstream released long before its
/// silence ends), not speed targets.
@Suite struct ResilienceTests {
    /// `a` (priority 1, tried first) and `b`, with `plugin` fields before the instances.
    func route(_ f: AIFixture, _ plugin: String, a aExtra: String = "", b bExtra: String = "") async throws {
        let a = f.instance("a", f.a, model: "model-a", extra: #","priority":1"# + aExtra)
        let b = f.instance("b", f.b, model: "model-b", extra: bExtra)
        try await f.route(#"{\#(plugin)"instances":[\#(a),\#(b)]}"#)
    }

    func timed(_ operation: () async throws -> HTTPResult) async throws -> (HTTPResult, Duration) {
        let start = ContinuousClock.now
        let result = try await operation()
        return (result, ContinuousClock.now - start)
    }

    static let contextLength =
        #"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#
    static let contentFilter =
        #"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400}}"#

    // MARK: - 429, 5xx, transport: retried in place with backoff

    @Test func rateLimitWithRetryAfterWaitsThenRetriesTheSameInstance() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let calls = Counter()
            f.a.reply { seen in
                calls.next() == 0
                    ? .json(status: 429, body: #"{"error":{"message":"slow down"}}"#, headers: [("Retry-After", "1")])
                    : .json(status: 200, body: FakeLLM.completion(model: "model-a"))
            }
            try await route(f, #""fallback_strategy":["http_429"],"retry":{"per_instance":1,"backoff_ms":10},"#)
            let (result, took) = try await timed { try await f.chat() }
            #expect(result.status == 200 && result.json["model"] == "model-a")
            try #require(f.a.requests.count == 2 && f.b.requests.isEmpty)
            let gap = f.a.requests[1].at - f.a.requests[0].at
            #expect(gap >= .milliseconds(1000), "waited \(gap), Retry-After was 1 s")
            #expect(took >= .milliseconds(1000))
            #expect(try await f.gw.metrics().contains(#"class="rate_limited""#))
        }
    }

    @Test func rateLimitWithoutRetryAfterBacksOffExponentially() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let calls = Counter()
            f.a.reply { _ in
                calls.next() < 2
                    ? .json(status: 429, body: #"{"error":{"message":"slow down"}}"#)
                    : .json(status: 200, body: FakeLLM.completion(model: "model-a"))
            }
            try await route(f, #""retry":{"per_instance":2,"backoff_ms":200,"jitter":false},"#)
            let result = try await f.chat()
            #expect(result.status == 200)
            let at = f.a.requests.map(\.at)
            try #require(at.count == 3 && f.b.requests.isEmpty)
            #expect(at[1] - at[0] >= .milliseconds(200) && at[2] - at[1] >= .milliseconds(400))
        }
    }

    /// `retry-after-ms` is a retry hint like `Retry-After`, in milliseconds.
    @Test func retryAfterMsIsHonoured() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let calls = Counter()
            f.a.reply { _ in
                calls.next() == 0
                    ? .json(
                        status: 429, body: #"{"error":{"message":"slow down"}}"#, headers: [("retry-after-ms", "700")])
                    : .json(status: 200, body: FakeLLM.completion(model: "model-a"))
            }
            try await route(f, #""retry":{"per_instance":1,"backoff_ms":10,"jitter":false},"#)
            #expect(try await f.chat().json["model"] == "model-a")
            try #require(f.a.requests.count == 2)
            let gap = f.a.requests[1].at - f.a.requests[0].at
            #expect(gap >= .milliseconds(700), "retried after \(gap)")
        }
    }

    /// OpenAI's `x-ratelimit-reset-requests` says when a bucket refills, not when to retry: the
    /// retry waits the backoff (50 ms), and the header only sets the instance's cooldown (20 s).
    @Test func xRateLimitResetSetsTheCooldownOnly() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in
                .json(
                    status: 429, body: #"{"error":{"message":"slow down"}}"#,
                    headers: [("x-ratelimit-reset-requests", "20s")])
            }
            try await route(
                f, #""fallback_strategy":["http_429"],"retry":{"per_instance":1,"backoff_ms":50,"jitter":false},"#,
                a: #","checks":{"passive":{}}"#)
            let sent = Date().timeIntervalSince1970
            #expect(try await f.chat().json["model"] == "model-b")
            try #require(f.a.requests.count == 2)
            let gap = f.a.requests[1].at - f.a.requests[0].at
            #expect(gap >= .milliseconds(50) && gap < .seconds(10), "retried after \(gap), not after the reset")
            let until = try #require(try await f.gw.healthNode("a")?["cooldown_until"]?.doubleValue)
            #expect(until >= sent + 19 && until <= Date().timeIntervalSince1970 + 20.5, "cooldown until \(until)")
            for _ in 0..<3 { #expect(try await f.chat().json["model"] == "model-b") }
            #expect(f.a.requests.count == 2)
        }
    }

    @Test func aRetryAfterLongerThanTheCapFallsOverAtOnce() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .json(status: 429, body: #"{"error":"quota"}"#, headers: [("Retry-After", "60")]) }
            try await route(f, #""fallback_strategy":["http_429"],"retry":{"per_instance":2},"#)
            let (result, took) = try await timed { try await f.chat() }
            #expect(result.status == 200 && result.json["model"] == "model-b")
            #expect(f.a.requests.count == 1 && f.b.requests.count == 1)
            #expect(took < .seconds(20))  // at once, not after 60 s or the 30 s cap
        }
    }

    @Test func aServerErrorOnceIsRetriedOnTheSameInstance() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let calls = Counter()
            f.a.reply { _ in
                calls.next() == 0
                    ? .json(status: 500, body: "oops") : .json(status: 200, body: FakeLLM.completion(model: "model-a"))
            }
            try await route(f, #""fallback_strategy":["http_5xx"],"retry":{"per_instance":1,"backoff_ms":50},"#)
            let result = try await f.chat()
            #expect(result.status == 200 && result.json["model"] == "model-a")
            #expect(f.a.requests.count == 2 && f.b.requests.isEmpty)
        }
    }

    @Test func anInstanceAlwaysUnavailableGetsItsBudgetThenTheFallback() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .json(status: 503, body: "unavailable") }
            // Backoffs of 400 and 800 ms in place; the fallback comes without the next one (1.6 s).
            try await route(
                f, #""fallback_strategy":["http_5xx"],"retry":{"per_instance":2,"backoff_ms":400,"jitter":false},"#)
            let result = try await f.chat()
            #expect(result.status == 200 && result.json["model"] == "model-b")
            try #require(f.a.requests.count == 3 && f.b.requests.count == 1)
            #expect(f.a.requests[2].at - f.a.requests[1].at >= .milliseconds(800))
            #expect(f.b.requests[0].at - f.a.requests[2].at < .milliseconds(1600))  // not the next backoff (1.6 s)
        }
    }

    @Test func aResetBeforeTheFirstByteIsTransportAndRetried() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let raw = fx.own(try RawUpstream(mode: .resetBeforeResponse))
            let a =
                #"{"name":"a","provider":"openai","weight":1,"priority":1,"auth":{},"override":{"endpoint":"\#(raw.endpoint)"}}"#
            try await f.route(
                #"{"fallback_strategy":["http_5xx"],"retry":{"per_instance":1,"backoff_ms":10},"instances":[\#(a),\#(f.instance("b", f.b, model: "model-b"))]}"#
            )
            let result = try await f.chat()
            #expect(result.status == 200 && result.json["model"] == "model-b")
            #expect(raw.requests == 2 && f.b.requests.count == 1)
            #expect(try await f.gw.metrics().contains(#"class="transport""#))
        }
    }

    @Test func aResetOnAReusedPooledConnectionIsRetried() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let raw = fx.own(try RawUpstream(mode: .serveThenReset(body: FakeLLM.completion(model: "raw"))))
            let a = #"{"name":"a","provider":"openai","weight":1,"auth":{},"override":{"endpoint":"\#(raw.endpoint)"}}"#
            try await f.route(#"{"retry":{"per_instance":1,"backoff_ms":10},"instances":[\#(a)]}"#)
            // The second request goes out on the pooled connection of the first, which is reset.
            for _ in 0..<2 {
                let result = try await f.chat()
                #expect(result.status == 200 && result.json["model"] == "raw")
            }
            #expect(raw.requests == 3)
        }
    }

    // MARK: - Timeouts: fall over at once, never retried in place

    @Test func aSilentUpstreamFallsOverAtTheHeaderTimeoutWithoutRetry() async throws {
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start(accessLog: .text("$status $llm_error_class $llm_model")))
            f.a.reply { _ in .hang }
            try await route(
                f, #""fallback_strategy":["http_5xx"],"response_header_timeout_ms":3000,"retry":{"per_instance":2},"#)
            let (result, took) = try await timed { try await f.chat() }
            #expect(result.status == 200 && result.json["model"] == "model-b")
            #expect(f.a.requests.count == 1 && f.b.requests.count == 1)
            #expect(took >= .milliseconds(3000))  // the hang itself would outlast the client (30 s)
            #expect(try await f.gw.metrics().contains(#"class="header_timeout""#))
            let log = try await f.gw.finalAccessLog()
            #expect(log == "200 header_timeout model-b\n")
        }
    }

    @Test func aSlowFirstTokenFallsOverWhenAnotherInstanceCanTakeIt() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let role = FakeLLM.chunk(model: "model-a", delta: ["role": "assistant", "content": ""])
            let late = FakeLLM.chunk(model: "model-a", delta: ["content": "late"])
            f.a.reply { _ in .sseTimed(events: [(0, role), (20000, late)]) }
            try await route(f, #""fallback_strategy":["http_5xx"],"first_token_timeout_ms":3000,"#)
            let (result, took) = try await timed { try await f.chat(streamBody) }
            #expect(result.status == 200)
            #expect(result.body.contains("model-b") && !result.body.contains("late"))
            #expect(result.body.components(separatedBy: "\"role\"").count == 2)
            #expect(dataLines(result.body).last == "[DONE]")
            #expect(took >= .milliseconds(3000))
            #expect(f.a.requests.count == 1 && f.b.requests.count == 1)
        }
    }

    @Test func theFirstTokenTimeoutIsNotEnforcedWhenNobodyCouldTakeOver() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let role = FakeLLM.chunk(model: "model-a", delta: ["role": "assistant", "content": ""])
            let late = FakeLLM.chunk(model: "model-a", delta: ["content": "worth the wait"])
            let finish = FakeLLM.chunk(model: "model-a", delta: [:], finish: "stop")
            f.a.reply { _ in .sseTimed(events: [(0, role), (800, late), (0, finish), (0, "data: [DONE]\n\n")]) }
            try await f.route(#"{"first_token_timeout_ms":200,"instances":[\#(f.instance("a", f.a))]}"#)
            let result = try await f.chat(streamBody)
            #expect(result.body.contains("worth the wait"))
            #expect(dataLines(result.body).last == "[DONE]")
        }
    }

    @Test func theRequestBudgetBoundsEveryAttempt() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .hang }
            f.b.reply { _ in .hang }
            try await route(
                f,
                #""fallback_strategy":["http_5xx"],"response_header_timeout_ms":2000,"request_timeout_ms":4000,"breaker":{"failures":1},"#
            )
            let (result, took) = try await timed { try await f.chat() }
            #expect(result.status == 504)
            #expect(took >= .milliseconds(3900))
            #expect(f.a.requests.count == 1 && f.b.requests.count == 1)
            #expect(try await f.gw.metrics().contains(#"class="request_timeout""#))
            // a timed out on its own (breaker open); b was cut by the request's budget: no verdict.
            let health = try await f.gw.control().arrayValue ?? []
            let breaker = { (name: String) in health.first { $0["instance"] == .string(name) }?["nodes"]?[0]?["breaker"]
            }
            #expect(breaker("a") == "open" && breaker("b") == "closed")
        }
    }

    // MARK: - 4xx: context length falls over, content filter and others go back as sent

    @Test func contextLengthFallsOverAndIsNeverResentToTheSameInstance() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .json(status: 400, body: Self.contextLength) }
            try await route(f, #""fallback_strategy":["context_length"],"retry":{"per_instance":3},"#)
            let result = try await f.chat()
            #expect(result.status == 200 && result.json["model"] == "model-b")
            #expect(f.a.requests.count == 1 && f.b.requests.count == 1)
            #expect(try await f.gw.metrics().contains(#"class="context_length_exceeded""#))
            // Without the strategy item it is an ordinary 400, returned as sent.
            try await route(f, #""fallback_strategy":["http_5xx"],"#)
            let plain = try await f.chat()
            #expect(plain.status == 400 && plain.body == Self.contextLength)
            #expect(f.b.requests.count == 1)
        }
    }

    @Test func aContentFilterIsReturnedAsSentWithoutRetryOrFallback() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .json(status: 400, body: Self.contentFilter, headers: [("x-request-id", "az-1")]) }
            // Even a fallback that lists 400 does not resend a refused prompt elsewhere.
            try await route(
                f,
                #""fallback_strategy":["http_5xx","context_length"],"fallback_http_statuses":[400],"retry":{"per_instance":2},"#
            )
            let result = try await f.chat()
            #expect(result.status == 400 && result.body == Self.contentFilter)
            #expect(result.headers.first(name: "x-upstream-request-id") == "az-1")
            #expect(f.a.requests.count == 1 && f.b.requests.isEmpty)
        }
    }

    @Test func otherClientErrorsAreReturnedWithoutRetry() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .json(status: 422, body: #"{"error":{"message":"bad temperature"}}"#) }
            try await route(f, #""fallback_strategy":["http_5xx","http_429"],"retry":{"per_instance":2},"#)
            let result = try await f.chat()
            #expect(result.status == 422 && result.json["error"]?["message"] == "bad temperature")
            #expect(f.a.requests.count == 1 && f.b.requests.isEmpty)
        }
    }

    // MARK: - Streams: continuation, malformed events, missing [DONE]

    /// `a` streams `words` and then fails as `end` says once its gate opens: the test opens it
    /// after the client saw the content (see ``TestGateway/streamOpeningGate(of:after:body:path:)``),
    /// since a cut right after the writes could overtake them.
    func breakingStream(_ words: [String], end: FakeLLM.StreamEnd) -> FakeLLM.Reply {
        let events = Array(
            FakeLLM.chatStream(model: "model-a", words: words, includeUsage: false).prefix(1 + words.count))
        return .sse(events: events, end: end, gateAfter: events.count)
    }

    /// A stream that ended with the gateway's in-band `stream_broken` error and no `[DONE]`.
    func expectBrokenInBand(_ body: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(dataLines(body).last?.contains("stream_broken") == true, sourceLocation: sourceLocation)
        #expect(!body.contains("[DONE]"), sourceLocation: sourceLocation)
    }

    func contentText(_ body: String) -> String {
        dataLines(body).compactMap { line -> String? in
            guard let json = try? JSONParser.parse(line) else { return nil }
            return json["choices"]?[0]?["delta"]?["content"]?.stringValue
        }.joined()
    }

    @Test func aCutStreamIsContinuedOnAPrefillInstance() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in self.breakingStream(["The answer", " is"], end: .cut) }
            f.b.reply { seen in
                let usage = seen.body["stream_options"]?["include_usage"]?.boolValue == true
                return .sse(
                    events: FakeLLM.chatStream(
                        model: "model-b", words: [" 2", "."], includeUsage: usage, usage: (30, 2)))
            }
            try await route(
                f, #""stream_continuation":true,"#, a: #","supports_assistant_prefill":true"#,
                b: #","supports_assistant_prefill":true"#)
            let body =
                #"{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"1+1?"}]}"#
            let result = try await f.gw.streamOpeningGate(of: f.a, after: " is", body: body)
            #expect(result.status == 200)
            #expect(contentText(result.body) == "The answer is 2.")
            #expect(result.body.components(separatedBy: "\"role\"").count == 2)  // one role chunk
            #expect(dataLines(result.body).last == "[DONE]")
            #expect(!result.body.contains("stream_broken"))
            #expect(result.body.contains(#""completion_tokens":2"#))  // the continuation's usage
            // b got the original request plus the text relayed so far as an assistant message.
            let messages = f.b.requests.first?.body["messages"]?.arrayValue ?? []
            #expect(messages.count == 2)
            #expect(messages.last == ["role": "assistant", "content": "The answer is"])
            #expect(f.a.requests.count == 1 && f.b.requests.count == 1)
        }
    }

    @Test func anIdleStallIsCutAtTheIdleTimeoutAndContinued() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let events = Array(FakeLLM.chatStream(model: "model-a", words: ["Hel"], includeUsage: false).prefix(2))
            f.a.reply { _ in .sseTimed(events: events.map { (0, $0) }, end: .hang) }
            // b answers "lo" to whatever it gets: the request it saw is what tells a correct
            // continuation from a fresh start.
            f.b.reply { _ in .sse(events: FakeLLM.chatStream(model: "model-b", words: ["lo"], includeUsage: true)) }
            try await route(
                f, #""stream_continuation":true,"stream_idle_timeout_ms":3000,"#,
                b: #","supports_assistant_prefill":true"#)
            let (result, took) = try await timed { try await f.chat(streamBody) }
            #expect(contentText(result.body) == "Hello")
            #expect(dataLines(result.body).last == "[DONE]")
            #expect(result.body.components(separatedBy: "\"role\"").count == 2, "exactly one role chunk")
            #expect(took >= .milliseconds(3000))  // cut by the idle timeout, not before
            #expect(f.a.requests.count == 1 && f.b.requests.count == 1)
            let continuation = try #require(f.b.requests.first?.body["messages"]?.arrayValue)
            #expect(continuation.count == 2)
            #expect(continuation.last == ["role": "assistant", "content": "Hel"])
        }
    }

    @Test func aContinuationIsNeverSentToAnInstanceWithoutPrefill() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            // a can continue itself; b (no flag) must never see a continuation.
            f.a.reply { seen in
                let continuing = seen.body["messages"]?.arrayValue?.last?["role"] == "assistant"
                return continuing
                    ? .sse(events: FakeLLM.chatStream(model: "model-a", words: ["lo"], includeUsage: true))
                    : self.breakingStream(["Hel"], end: .cut)
            }
            try await route(f, #""stream_continuation":true,"#, a: #","supports_assistant_prefill":true"#)
            let result = try await f.gw.streamOpeningGate(of: f.a, after: "Hel", body: streamBody)
            #expect(contentText(result.body) == "Hello")
            #expect(dataLines(result.body).last == "[DONE]")
            #expect(f.a.requests.count == 2 && f.b.requests.isEmpty)
            // Without any prefill-capable instance the break is reported in-band.
            try await route(f, #""stream_continuation":true,"#)
            f.a.reply { _ in self.breakingStream(["Hel"], end: .cut) }
            f.a.closeGate()
            let broken = try await f.gw.streamOpeningGate(of: f.a, after: "Hel", body: streamBody)
            #expect(contentText(broken.body) == "Hel")
            expectBrokenInBand(broken.body)
            #expect(f.a.requests.count == 3 && f.b.requests.isEmpty)
        }
    }

    @Test func aFallbackThatRejectsPrefillLeavesTheOriginalFailureInBand() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in self.breakingStream(["Hel"], end: .cut) }
            f.b.reply { _ in .json(status: 400, body: #"{"error":{"message":"assistant prefill is not supported"}}"#) }
            try await route(f, #""stream_continuation":true,"#, b: #","supports_assistant_prefill":true"#)
            let result = try await f.gw.streamOpeningGate(of: f.a, after: "Hel", body: streamBody)
            #expect(contentText(result.body) == "Hel")
            let last = dataLines(result.body).last ?? ""
            #expect(last.contains("stream_broken") && last.contains("upstream stream failed"), "\(last)")
            #expect(!last.contains("prefill"))
            #expect(!result.body.contains("[DONE]"))
            #expect(f.b.requests.count == 1)
        }
    }

    /// A continuation is bound by the original stream's `max_response_bytes`: a's bytes and b's
    /// each fit, together they do not, so b's answer is cut (it would be whole on a fresh count).
    @Test func aContinuationCountsAgainstTheOriginalMaxResponseBytes() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let aWords = ["The", " answer", " to", " what", " you", " asked", " is", " this:"]
            let aEvents = Array(
                FakeLLM.chatStream(model: "model-a", words: aWords, includeUsage: false).prefix(1 + aWords.count))
            let bEvents = FakeLLM.chatStream(
                model: "model-b", words: [" 2", ",", " as", " it", " always", " is", "."], includeUsage: false)
            let aBytes = aEvents.map(\.utf8.count).reduce(0, +)
            let bBytes = bEvents.map(\.utf8.count).reduce(0, +)
            let limit = max(aBytes, bBytes) + min(aBytes, bBytes) / 2
            f.a.reply { _ in .sse(events: aEvents, end: .cut, gateAfter: aEvents.count) }
            f.b.reply { _ in .sse(events: bEvents) }
            try await route(
                f, #""stream_continuation":true,"max_response_bytes":\#(limit),"#,
                b: #","supports_assistant_prefill":true"#)
            let result = try await f.gw.streamOpeningGate(of: f.a, after: "this:", body: streamBody)
            #expect(f.b.requests.count == 1)
            let text = contentText(result.body)
            // Cut about half-way through b's answer.
            #expect(text.hasPrefix(aWords.joined()) && !text.hasSuffix(" always is."), "\(text)")
            expectBrokenInBand(result.body)
        }
    }

    /// The same for `max_stream_duration_ms`, counted from the original request: b's 4 s of
    /// chunks would fit in 5 s alone, not after the 1.5 s a took to answer.
    @Test func aContinuationCountsAgainstTheOriginalMaxStreamDuration() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .delayed(1500, self.breakingStream(["Counting:"], end: .cut)) }
            let words = [" one", " two", " three", " four", " five", " six", " seven", " eight"]
            let bEvents = FakeLLM.chatStream(model: "model-b", words: words, includeUsage: false)
            // role at once, then one word every 500 ms, then finish and [DONE].
            let timed = bEvents.enumerated().map { i, event in (i >= 1 && i <= words.count ? 500 : 0, event) }
            f.b.reply { _ in .sseTimed(events: timed) }
            try await route(
                f, #""stream_continuation":true,"max_stream_duration_ms":5000,"#,
                b: #","supports_assistant_prefill":true"#)
            let result = try await f.gw.streamOpeningGate(of: f.a, after: "Counting:", body: streamBody)
            #expect(f.b.requests.count == 1)
            let text = contentText(result.body)
            #expect(text.hasPrefix("Counting:") && !text.hasSuffix(" eight"), "\(text)")
            expectBrokenInBand(result.body)
        }
    }

    /// Every continuation of one break shares one `first_token_timeout_ms` window: a silent
    /// first candidate spends it, and the next candidate is not tried at all.
    @Test func theContinuationsOfOneBreakShareOneFirstTokenWindow() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let c = try await fx.own(FakeLLM.start(name: "c"))
            f.a.reply { _ in self.breakingStream(["Hel"], end: .cut) }
            f.b.reply { _ in .hang }
            c.reply { _ in .sse(events: FakeLLM.chatStream(model: "model-c", words: ["lo"], includeUsage: false)) }
            let prefill = #","supports_assistant_prefill":true"#
            let a = f.instance("a", f.a, model: "model-a", extra: #","priority":2"#)
            let b = f.instance("b", f.b, model: "model-b", extra: #","priority":1"# + prefill)
            let cInstance = f.instance("c", c, model: "model-c", extra: prefill)
            try await f.route(
                #"{"stream_continuation":true,"first_token_timeout_ms":3000,"instances":[\#(a),\#(b),\#(cInstance)]}"#)
            let result = try await f.gw.streamOpeningGate(of: f.a, after: "Hel", body: streamBody)
            #expect(f.b.requests.count == 1)
            #expect(c.requests.isEmpty, "the window was spent on b")
            #expect(contentText(result.body) == "Hel")
            expectBrokenInBand(result.body)
        }
    }

    @Test func malformedEventsAreDroppedAndCounted() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            var stream = FakeLLM.chatStream(model: "model-a", words: ["a", "b"], includeUsage: true)
            stream.insert("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}\n\n", at: 2)
            let events = stream
            f.a.reply { _ in .sse(events: events) }
            try await f.route(#"{"instances":[\#(f.instance("a", f.a))]}"#)
            let result = try await f.chat(streamBody)
            #expect(contentText(result.body) == "ab")
            #expect(!result.body.contains("\"x\""))
            #expect(dataLines(result.body).last == "[DONE]")
            // One malformed event, counted once for its route and instance.
            #expect(
                try await f.gw.sample("switchboard_stream_malformed_events_total", ["route_id": "ai", "node": "a"]) == 1
            )
        }
    }

    @Test(arguments: ["close", "hang", "no-content"])
    func aCompleteStreamWithoutDoneIsFinishedByTheGateway(ending: String) async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            var events = Array(FakeLLM.chatStream(model: "model-a", words: ["a"], includeUsage: true).dropLast())
            if ending == "no-content" {  // a filtered answer: role, finish, usage and nothing else
                events.remove(at: 1)
            }
            let stream = events
            f.a.reply { _ in .sseTimed(events: stream.map { (0, $0) }, end: ending == "hang" ? .hang : .close) }
            // Default timeouts (30 s): a stream that stays open after its usage must not wait for them.
            try await f.route(#"{"instances":[\#(f.instance("a", f.a))]}"#)
            let (result, took) = try await timed {
                try await f.chat(#"{"stream":true,"stream_options":{"include_usage":true},"messages":[]}"#)
            }
            #expect(contentText(result.body) == (ending == "no-content" ? "" : "a"))
            #expect(dataLines(result.body).last == "[DONE]")
            #expect(result.body.contains("\"usage\""))
            #expect(!result.body.contains("stream_broken"))
            #expect(took < .seconds(20))  // not the 30 s timeouts
        }
    }

    // MARK: - Circuit breaker

    @Test func theBreakerOpensSendsTrafficElsewhereAndClosesOnRecovery() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let down = Flag(true)
            f.a.reply { seen in
                down.isOn
                    ? .json(status: 503, body: "down") : .json(status: 200, body: FakeLLM.completion(model: "model-a"))
            }
            try await route(f, #""fallback_strategy":["http_5xx"],"breaker":{"failures":2,"open_ms":2500},"#)
            for _ in 0..<2 { #expect(try await f.chat().json["model"] == "model-b") }
            try #require(f.a.requests.count == 2)
            let openedAt = f.a.requests[1].at
            #expect(try await f.gw.healthNode("a")?["breaker"] == "open")
            #expect(
                try await f.gw.metrics().contains(#"switchboard_llm_instance_breaker_state{route_id="ai",node="a"} 1"#))
            // Open: straight to b; a sees nothing before open_ms has passed (a loaded machine may
            // take longer than that for the burst: a trial after it is allowed, and fails).
            for _ in 0..<3 { #expect(try await f.chat().json["model"] == "model-b") }
            #expect(f.a.requests.dropFirst(2).allSatisfy { $0.at - openedAt >= .milliseconds(2500) })
            // a recovers; after open_ms one trial goes to a and closes the breaker.
            down.set(false)
            let reopened = try await eventually { try await f.gw.healthNode("a")?["available"] == true }
            #expect(reopened)
            #expect(try await f.chat().json["model"] == "model-a")
            #expect(try await f.chat().json["model"] == "model-a")
            let after = try await f.gw.control()
            #expect(after.arrayValue?.first { $0["instance"] == "a" }?["nodes"]?[0]?["breaker"] == "closed")
        }
    }

    // MARK: - Truth in responses, configuration

    @Test func theModelIsWhatTheServingUpstreamReported() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .json(status: 503, body: "down") }
            f.b.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "model-b-2026-01-01", usage: (11, 3))) }
            try await route(f, #""fallback_strategy":["http_5xx"],"#)
            let result = try await f.chat()
            #expect(result.json["model"] == "model-b-2026-01-01")
            // Tokens are charged to the attempt that produced the answer, under APISIX's `llm_model`:
            // the serving instance's `options.model` (what was asked for, not what was reported).
            let tokens = try await f.gw.metrics().split(separator: "\n").filter {
                $0.hasPrefix("apisix_llm_completion_tokens{")
            }
            #expect(tokens.count == 1)
            #expect(tokens.first?.contains(#"node="b""#) == true)
            #expect(tokens.first?.contains(#"llm_model="model-b""#) == true)
            #expect(tokens.first?.hasSuffix(" 3") == true)
        }
    }

    @Test func resilienceFieldsAreValidated() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let a = f.instance("a", f.a)
            let bad = try await f.gw.admin(
                .PUT, "/routes/x",
                #"{"uri":"/x","plugins":{"ai-proxy-multi":{"retry":{"per_instance":1,"tries":3},"instances":[\#(a)]}}}"#
            )
            #expect(bad.status == 400)
            #expect(bad.json["error_msg"]?.stringValue?.contains("tries") == true)
            let negative = try await f.gw.admin(
                .PUT, "/routes/x",
                #"{"uri":"/x","plugins":{"ai-proxy-multi":{"stream_idle_timeout_ms":0,"instances":[\#(a)]}}}"#)
            #expect(negative.status == 400)
            let good = try await f.gw.admin(
                .PUT, "/routes/x",
                #"{"uri":"/x","plugins":{"ai-proxy-multi":{"fallback_strategy":["context_length"],"retry":{"per_instance":1},"breaker":{},"instances":[\#(a)]}}}"#
            )
            #expect(good.status == 201, "\(good.body)")
            let stored = good.json["value"]?["plugins"]?["ai-proxy-multi"]
            #expect(
                stored?["retry"] == [
                    "per_instance": 1, "backoff_ms": 500, "max_backoff_ms": 5000, "jitter": true,
                    "honor_retry_after": true,
                    "max_retry_after_ms": 30000,
                ])
            #expect(stored?["breaker"] == ["failures": 3, "open_ms": 10000])
        }
    }
}

import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SwitchboardCore

extension AIProxyHandler {
    /// How a stream opened: its first committed bytes, or the failure of the attempt.
    enum Opening {
        case content(first: [UInt8], done: Bool)
        case failure(AttemptFailure)
    }

    /// Why a committed stream broke: the message the client gets in-band, and the cause.
    struct Break {
        var message: String
        var cause: ErrorClass
        /// A gateway limit (`max_response_bytes`, `max_stream_duration_ms`) is final: continuing
        /// elsewhere would only get around it.
        var continuable = true
        /// The in-band error's `code`.
        var code = "stream_broken"

        /// The shutdown's deadline ended the stream (see ``ShutdownDrain``): not the
        /// instance's fault, and not to be continued elsewhere.
        static let shutdown = Break(
            message: "the gateway is shutting down", cause: .transport, continuable: false, code: "shutdown")
    }

    /// Reads a stream until its first content (or its clean end). Nothing is sent to the client
    /// meanwhile, so a stream that fails before content (error event, reset, silence past the
    /// content deadline) is a failed attempt and the fallback rules apply.
    func open(
        _ relay: StreamRelay, started: ContinuousClock.Instant, contentDeadline: ContinuousClock.Instant,
        budgetBound: Bool, target: String
    ) async -> Opening {
        let elapsed = { Self.milliseconds(ContinuousClock.now - started) }
        var first: [UInt8] = []
        var finished = false
        while !relay.committed {
            let chunk: ByteBuffer?
            do {
                chunk = try await relay.next(before: contentDeadline)
            } catch let error as StreamRelay.NoContentInTime {
                let errorClass: ErrorClass = budgetBound ? .requestTimeout : .firstTokenTimeout
                return .failure(
                    .gatewayError(
                        status: 504, message: "\(error) (\(errorClass.rawValue))", code: "upstream_timeout",
                        elapsedMs: elapsed(), errorClass: errorClass))
            } catch {
                return .failure(
                    Self.transportFailure(
                        error, elapsedMs: elapsed(), phase: .body(idleMs: settings.resilience.streamIdleTimeoutMs),
                        target: target))
            }
            guard let chunk else {
                if relay.inspector.isComplete {
                    first = relay.flushHeld()
                    finished = true
                    break
                }
                return .failure(
                    .gatewayError(
                        status: 502, message: "upstream closed the stream before sending any content",
                        code: "stream_empty", elapsedMs: elapsed(), errorClass: .server))
            }
            // What an upstream sends before content is held, so it counts against the same
            // byte limit as the answer: an endless preamble cannot grow memory.
            if relay.bytesRead + chunk.readableBytes > settings.maxResponseBytes ?? Self.defaultMaxResponseBytes {
                context.logger.warning("aborting AI stream: max_response_bytes exceeded before any content")
                return .failure(
                    AttemptFailure(
                        status: 502, body: Array("max_response_bytes exceeded".utf8), contentType: "text/plain",
                        elapsedMs: elapsed(), errorClass: .responseTooLarge))
            }
            let step = relay.feed(chunk)
            if let error = step.error {
                var failure = AttemptFailure.gatewayError(
                    status: 502, message: "upstream stream failed before content: \(error)", code: "stream_error",
                    elapsedMs: elapsed(), errorClass: .server)
                // An error event is classified like an error answer (overloaded, rate limit, ...).
                let inferred = ErrorClass.classify(status: 400, body: Array(error.utf8))
                if inferred == .contextLength || inferred == .contentFiltered {
                    failure.errorClass = inferred
                } else if ASCII.contains(error, "rate_limit") || ASCII.contains(error, "rate limit")
                    || ASCII.contains(error, "throttling")
                {
                    failure.errorClass = .rateLimited
                }
                return .failure(failure)
            }
            first = step.out
            finished = step.done
        }
        return .content(first: first, done: finished)
    }

    /// A streamed answer: opened (see ``open``), then relayed chunk by chunk. A break after
    /// content is continued on a prefill-capable instance when `stream_continuation` is on;
    /// otherwise (or if that fails) it is reported in-band as a final `data: {"error":...}`
    /// event carrying the original failure, without `[DONE]`.
    func stream(
        _ answer: UpstreamAnswer, started: ContinuousClock.Instant, contentDeadline: ContinuousClock.Instant,
        budgetBound: Bool, exchange: Exchange, ai: AIExchange, index: Int, target: AIProtocol, dropUsage: Bool,
        headers: HTTPFields, contentType: String
    ) async -> AttemptOutcome {
        let keepText = exchange.aiLog?.payloads == true || canContinue(ai)
        let response = answer.response
        let translator =
            target == ai.clientProtocol
            ? nil
            : makeStreamTranslator(
                from: target, to: ai.clientProtocol, clientBody: ai.body, created: Self.unixTime(),
                model: settings.instances[index].model(clientModel: ai.clientModel))
        let relay = StreamRelay(
            answer, proto: target, dropUsage: dropUsage, keepText: keepText, translator: translator)
        let opening = await open(
            relay, started: started, contentDeadline: contentDeadline, budgetBound: budgetBound,
            target: exchange.upstreamAddr ?? "the upstream")
        let first: [UInt8]
        let alreadyDone: Bool
        switch opening {
        case .failure(let failure): return .failure(failure)
        case .content(let bytes, let done): (first, alreadyDone) = (bytes, done)
        }
        exchange.logValues["llm_time_to_first_token"] = String(Self.milliseconds(ContinuousClock.now - started))

        ai.relayingStream = true
        exchange.upstreamWait += ContinuousClock.now - started
        var fields = headers
        // A translated stream is in the client's protocol: server-sent events.
        fields[.contentType] = translator == nil ? contentType : "text/event-stream"
        fields[.cacheControl] = "no-cache"
        let watch: ConnectionWatch? =
            if let channel = exchange.channel { await ConnectionWatch.of(channel) } else { nil }
        let body = ResponseBody { writer in
            // A client that leaves cancels the relay (and so the upstream request) at once;
            // the connection stays reusable for the client's next request.
            try await ConnectionWatch.cancellingOnClose(watch) {
                try await writer.write(ByteBuffer(bytes: first))
                var tally = StreamTally()
                var broken: Break?
                if !alreadyDone {
                    broken = try await self.pumpUntilShutdown(relay, into: &writer, started: started)
                } else if !relay.inspector.sawDone {
                    // Complete (a finish reason, no content) but closed without its end event.
                    let closing = relay.closing()
                    if !closing.isEmpty { try await writer.write(ByteBuffer(bytes: closing)) }
                }
                tally.add(relay)
                var serving = index
                if let original = broken {
                    self.reportBreak(original, instance: index, exchange: exchange, ai: ai)
                    // No new upstream request once the shutdown's deadline has passed.
                    if original.continuable, self.canContinue(ai), !relay.inspector.hasToolCalls,
                        !self.context.services.drain.deadlinePassed
                    {
                        // All continuations of this break share one first-token window.
                        let window = ContinuousClock.now + .milliseconds(settings.resilience.firstTokenTimeoutMs)
                        let candidates = self.continuationCandidates(after: index, client: ai.clientProtocol)
                        for candidate in candidates where ContinuousClock.now < window {
                            guard
                                let next = try await self.continueStream(
                                    candidate, text: tally.text, textBlock: tally.textBlock ?? 0,
                                    bytesBefore: tally.bytes, started: started,
                                    window: window, exchange: exchange, ai: ai, into: &writer)
                            else { continue }
                            tally.add(next.relay)
                            serving = candidate
                            self.select(candidate, exchange, ai)
                            if let limiter = self.rateLimiter(exchange) {
                                _ = await limiter.moveReservation(
                                    to: settings.instances[candidate].name, exchange: exchange, enforce: false)
                            }
                            guard let again = next.broken else {
                                broken = nil
                                break
                            }
                            self.reportBreak(again, instance: candidate, exchange: exchange, ai: ai)
                            if again.code == Break.shutdown.code { broken = again }
                            if !again.continuable { break }
                        }
                    }
                    // The client hears about the original failure, never a continuation's (but
                    // a continuation ended by the shutdown says so).
                    if let last = broken, last.code != Break.shutdown.code { broken = original }
                }
                self.finishStream(
                    tally, exchange: exchange, ai: ai, serving: serving,
                    elapsedMs: Self.milliseconds(ContinuousClock.now - started),
                    broken: broken)
                if let broken {
                    try await writer.write(
                        ByteBuffer(
                            bytes: Self.inBandError(broken.message, client: ai.clientProtocol, code: broken.code)))
                }
            }
            try await writer.finish(nil)
        }
        return .success(
            Response(status: HTTPResponse.Status(code: Int(response.status.code)), headers: fields, body: body))
    }

    /// ``pump``, ended by the shutdown's deadline (see ``ShutdownDrain``): a stream still open
    /// then breaks with ``Break/shutdown``. The relay runs in a task of its own that the
    /// deadline cancels, so the in-band error is written by this (uncancelled) one.
    func pumpUntilShutdown(
        _ relay: StreamRelay, into writer: inout any ResponseBodyWriter, started: ContinuousClock.Instant,
        bytesBefore: Int = 0
    ) async throws -> Break? {
        let drain = context.services.drain
        do {
            return try await ConnectionWatch.cancellingOnClose(drain.deadline, keepingResults: true) {
                try await self.pump(relay, into: &writer, started: started, bytesBefore: bytesBefore)
            }
        } catch is CancellationError where drain.deadlinePassed && !Task.isCancelled {
            return .shutdown
        }
    }

    /// How long a complete stream (finish reason and usage seen) may take to send `[DONE]` or
    /// close before the gateway ends it itself.
    static let sentinelGraceMs = 200

    /// Relays a committed stream to the client until it ends; returns why it broke, if it did.
    /// A stream that ends, goes idle or dawdles after its finish reason and usage is complete:
    /// the gateway writes `[DONE]` itself instead of waiting for the sentinel. `started` and
    /// `bytesBefore` are the whole answer's (a continuation counts against the same limits).
    func pump(
        _ relay: StreamRelay, into writer: inout any ResponseBodyWriter, started: ContinuousClock.Instant,
        bytesBefore: Int = 0
    ) async throws -> Break? {
        let finishWithDone = { (writer: inout any ResponseBodyWriter) async throws in
            let closing = relay.closing()
            if !closing.isEmpty { try await writer.write(ByteBuffer(bytes: closing)) }
        }
        while true {
            if let max = settings.maxStreamDurationMs, Self.milliseconds(ContinuousClock.now - started) > max {
                context.logger.warning("aborting AI stream: max_stream_duration_ms exceeded; bytes=\(relay.bytesRead)")
                return Break(message: "max_stream_duration_ms exceeded", cause: .streamBroken, continuable: false)
            }
            let chunk: ByteBuffer?
            do {
                if relay.inspector.isFinished {
                    chunk = try await relay.next(before: .now + .milliseconds(Self.sentinelGraceMs))
                } else {
                    chunk = try await relay.next()
                }
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                // Cancelled (the client left, or the shutdown's deadline): not the upstream's failure.
                if Task.isCancelled { throw CancellationError() }
                if relay.inspector.isComplete {
                    try await finishWithDone(&writer)
                    return nil
                }
                let idle = UpstreamClients.isTimeout(error)
                return Break(
                    message: idle
                        ? "upstream stream idle for more than \(settings.resilience.streamIdleTimeoutMs)ms"
                        : "upstream stream failed: \(error)",
                    cause: idle ? .idleTimeout : .transport)
            }
            guard let chunk else {
                if relay.inspector.isComplete {
                    // Complete but without `[DONE]`: finish it for the client.
                    try await finishWithDone(&writer)
                    return nil
                }
                return Break(message: "upstream closed the stream before it was complete", cause: .transport)
            }
            let step = relay.feed(chunk)
            if !step.out.isEmpty { try await writer.write(ByteBuffer(bytes: step.out)) }
            if let error = step.error { return Break(message: error, cause: .server) }
            if step.done { return nil }
            if let max = settings.maxResponseBytes, bytesBefore + relay.bytesRead > max {
                return Break(message: "max_response_bytes exceeded", cause: .responseTooLarge, continuable: false)
            }
        }
    }

    /// Usage, tool calls, text and malformed events over a stream and its continuations.
    struct StreamTally {
        var usage = TokenUsage()
        var text = ""
        var hasToolCalls = false
        var malformed = 0
        var model: String?
        var bytes = 0
        /// The Anthropic text block the client has open (continuations resume it).
        var textBlock: Int?

        mutating func add(_ relay: StreamRelay) {
            bytes += relay.bytesRead
            textBlock = textBlock ?? relay.clientTextBlock
            let inspector = relay.inspector
            if !inspector.usage.isEmpty { usage.add(inspector.usage) }
            text += inspector.text.joined()
            hasToolCalls = hasToolCalls || inspector.hasToolCalls
            malformed += relay.malformedEvents
            if let m = inspector.model { model = m }
        }
    }

    func finishStream(
        _ tally: StreamTally, exchange: Exchange, ai: AIExchange, serving: Int, elapsedMs: Int, broken: Break?
    ) {
        exchange.logValues["apisix_upstream_response_time"] = String(elapsedMs)
        exchange.upstreamResponseTime = .milliseconds(elapsedMs)
        if tally.hasToolCalls { exchange.logValues["llm_has_tool_calls"] = "true" }
        if !tally.usage.isEmpty { record(tally.usage, exchange, ai) }
        if let model = tally.model { exchange.logValues["llm_response_model"] = model }
        let routeID = exchange.route?.id ?? ""
        let node = settings.instances[serving].name
        if let broken {
            let reason =
                broken.code == Break.shutdown.code
                ? "shutdown" : !broken.continuable ? "limit" : broken.cause == .idleTimeout ? "timeout" : "upstream"
            context.metrics.streamError(reason: reason)
        } else {
            // Breaks were reported when they happened; the instance that finished gets its success.
            health[serving].reportLive(status: exchange.upstreamStatus, failure: nil)
            health[serving].reportToBreaker(nil)
            ai.pendingVerdict = nil
        }
        if let log = exchange.aiLog, log.payloads { log.responseText = tally.text }
        if tally.malformed > 0 {
            context.logger.warning("dropped \(tally.malformed) malformed upstream stream events")
            context.metrics.malformedEvents(routeID: routeID, node: node, count: tally.malformed)
        }
    }

    /// A break after content, reported once when it happens: the access log's class, the
    /// failure metric, and (unless a gateway limit caused it) passive health and the breaker.
    func reportBreak(_ broken: Break, instance: Int, exchange: Exchange, ai: AIExchange) {
        // The shutdown's deadline is nobody's failure: not the instance's, not the stream's.
        if broken.code == Break.shutdown.code {
            if ai.pendingVerdict == instance { ai.pendingVerdict = nil }
            return health[instance].abandon()
        }
        exchange.logValues["llm_error_class"] = ErrorClass.streamBroken.rawValue
        context.metrics.attemptFailure(
            routeID: exchange.route?.id ?? "", node: settings.instances[instance].name, errorClass: .streamBroken)
        if ai.pendingVerdict == instance { ai.pendingVerdict = nil }
        guard broken.continuable else { return health[instance].abandon() }
        health[instance].reportLive(status: nil, failure: broken.cause == .idleTimeout ? .timeout : .tcp)
        health[instance].reportToBreaker(.streamBroken)
    }

    /// The event that tells a client its stream broke after content: OpenAI's `data:
    /// {"error":...}` (the SDKs raise it), or Anthropic's `error` event.
    static func inBandError(_ message: String, client: AIProtocol, code: String = "stream_broken") -> [UInt8] {
        if client == .bedrockConverse {
            let payload: JSONValue = ["message": .string(message)]
            return EventStreamDecoder.encode(
                headers: [
                    (":message-type", "exception"), (":exception-type", "internalServerException"),
                    (":content-type", "application/json"),
                ], payload: payload.serializedBytes())
        }
        if client == .anthropicMessages {
            var out: [UInt8] = []
            ChatToMessagesStream.write("error", AnthropicTranslation.error(status: 502, message: message), into: &out)
            return out
        }
        let type = code == Break.shutdown.code ? "server_error" : "upstream_error"
        let event: JSONValue = [
            "error": ["message": .string(message), "type": .string(type), "code": .string(code)]
        ]
        return Array("data: \(event.serialized())\n\n".utf8)
    }

    static func trimmingTrailingWhitespace(_ text: String) -> String {
        var end = text.endIndex
        while end > text.startIndex, text[text.index(before: end)].isWhitespace { end = text.index(before: end) }
        return String(text[..<end])
    }

    static func unixTime() -> Int {
        Int(Date().timeIntervalSince1970)
    }

    /// Whether a broken stream of this request may be continued on another attempt.
    func canContinue(_ ai: AIExchange) -> Bool {
        let client = ai.clientProtocol
        return settings.resilience.streamContinuation && ai.streaming && (ai.body["n"]?.intValue ?? 1) == 1
            && settings.instances.contains { Self.canContinueStreams($0, client: client) }
    }

    /// Continuations are chat requests with an assistant prefill, in OpenAI's or Anthropic's
    /// protocol (either client, translated where the instance speaks the other).
    static func canContinueStreams(_ instance: AIInstance, client: AIProtocol) -> Bool {
        guard instance.supportsAssistantPrefill, chatProtocols.contains(client),
            let target = instance.target(for: client)
        else { return false }
        return chatProtocols.contains(target)
    }

    static let chatProtocols: Set<AIProtocol> = [.openaiChat, .anthropicMessages]

    /// Instances that may continue a stream broken on `failed`: the prefill-capable ones,
    /// others first (by priority, then configuration order), the failed instance last. Open
    /// breakers and unhealthy instances are skipped.
    func continuationCandidates(after failed: Int, client: AIProtocol) -> [Int] {
        let capable = settings.instances.indices.filter {
            Self.canContinueStreams(settings.instances[$0], client: client)
        }
        let others = capable.filter { $0 != failed }.sorted {
            settings.instances[$0].priority > settings.instances[$1].priority
        }
        return (others + capable.filter { $0 == failed }).filter { health[$0].isAvailable() }
    }

    /// The result of one continuation: its relay, and why it broke (if it did).
    struct Continued {
        var relay: StreamRelay
        var broken: Break?
    }

    /// Sends the original request plus an assistant message holding `text` (what the client has
    /// already received) to `index`, and relays only the continuation's content: no second
    /// role chunk or `message_start`; an Anthropic client's text goes on in its open block
    /// `textBlock`. `nil` when the continuation failed before any content (nothing was written).
    func continueStream(
        _ index: Int, text: String, textBlock: Int, bytesBefore: Int, started answerStarted: ContinuousClock.Instant,
        window: ContinuousClock.Instant, exchange: Exchange, ai: AIExchange, into writer: inout any ResponseBodyWriter
    ) async throws -> Continued? {
        let instance = settings.instances[index]
        let client = ai.clientProtocol
        guard let target = instance.target(for: client) else { return nil }
        var body = ai.body
        var messages = body["messages"]?.arrayValue ?? []
        // Anthropic refuses a prefill that ends in white space; the model writes it again.
        let prefill = target == .anthropicMessages ? Self.trimmingTrailingWhitespace(text) : text
        messages.append(["role": "assistant", "content": .string(prefill)])
        body["messages"] = .array(messages)
        let source = target == client ? body : Self.translate(body, from: client, to: target)
        let shaped = RequestShaper.shape(source, target: target, instance: instance)
        let bytes = ByteBuffer(bytes: (shaped.body ?? source).serializedBytes())
        let routeID = exchange.route?.id ?? ""
        let bearer: String?
        do {
            bearer = try await accessToken(for: instance)  // nil unless the instance uses auth.gcp
        } catch {
            context.metrics.continuation(routeID: routeID, node: instance.name, outcome: "failed")
            return nil
        }
        guard let request = buildRequest(instance, exchange, ai, target: target, body: bytes, bearer: bearer) else {
            return nil
        }
        let started = ContinuousClock.now
        let r = settings.resilience
        let answer: UpstreamAnswer
        do {
            answer = try await send(request, streaming: true, deadline: window)
        } catch {
            context.logger.warning("stream continuation on \(instance.name) failed: \(error.error)")
            context.metrics.continuation(routeID: routeID, node: instance.name, outcome: "failed")
            return nil
        }
        let response = answer.response
        let status = Int(response.status.code)
        let contentType = response.headers.first(name: "content-type")?.lowercased() ?? ""
        guard status == 200, contentType.contains("text/event-stream") else {
            let body = (try? await response.body.collect(upTo: Self.errorBodyLimit)).map { String(buffer: $0) } ?? ""
            context.logger.warning(
                "stream continuation on \(instance.name) refused: status \(status) \(body.prefix(200))")
            context.metrics.continuation(routeID: routeID, node: instance.name, outcome: "failed")
            health[index].reportToBreaker(ErrorClass.classify(status: status, body: Array(body.utf8)))
            return nil
        }
        let translator: (any StreamTranslator)?
        switch (target, client) {
        case (.openaiChat, .anthropicMessages): translator = ChatToMessagesStream(resumingTextBlock: textBlock)
        case (.anthropicMessages, .anthropicMessages): translator = AnthropicResume(textBlock: textBlock)
        default:
            translator = makeStreamTranslator(
                from: target, to: client, clientBody: ai.body, created: Self.unixTime(),
                model: instance.model(clientModel: ai.clientModel))
        }
        let relay = StreamRelay(
            answer, proto: target, dropUsage: shaped.injectedUsage, keepText: true, dropPreamble: true,
            translator: translator)
        let opening = await open(
            relay, started: started, contentDeadline: min(started + .milliseconds(r.firstTokenTimeoutMs), window),
            budgetBound: false, target: exchange.upstreamAddr ?? "the upstream")
        guard case .content(let first, let done) = opening else {
            context.logger.warning("stream continuation on \(instance.name) failed before content")
            context.metrics.continuation(routeID: routeID, node: instance.name, outcome: "failed")
            return nil
        }
        context.logger.info("continuing a broken stream on \(instance.name) after \(text.utf8.count) bytes of text")
        ai.pendingVerdict = index
        try await writer.write(ByteBuffer(bytes: first))
        let broken =
            done
            ? nil : try await pumpUntilShutdown(relay, into: &writer, started: answerStarted, bytesBefore: bytesBefore)
        context.metrics.continuation(
            routeID: routeID, node: instance.name, outcome: broken == nil ? "continued" : "failed")
        return Continued(relay: relay, broken: broken)
    }
}

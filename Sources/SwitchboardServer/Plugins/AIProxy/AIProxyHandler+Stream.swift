import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import NIOCore
import SwitchboardCore

extension AIProxyHandler {
    /// A streamed answer. Until an event with content arrives nothing is sent to the client,
    /// so a stream that fails before content (error event, reset, silence past `timeout`) is a
    /// failed attempt and the fallback rules apply. Once content flowed, a break is reported
    /// in-band as a final `data: {"error":...}` event without `[DONE]`.
    func stream(
        _ response: HTTPClientResponse, started: ContinuousClock.Instant, exchange: Exchange, ai: AIExchange,
        dropUsage: Bool, headers: HTTPFields, contentType: String
    ) async -> AttemptOutcome {
        let relay = StreamRelay(
            response.body, proto: ai.clientProtocol, dropUsage: dropUsage, keepText: exchange.aiLog?.payloads == true)
        let elapsed: @Sendable () -> Int = { Self.milliseconds(ContinuousClock.now - started) }
        var first: [UInt8] = []
        var finished = false
        let contentDeadline = started + .milliseconds(settings.timeoutMs)
        while !relay.committed {
            let chunk: ByteBuffer?
            do {
                chunk = try await relay.next(before: contentDeadline)
            } catch let error as StreamRelay.NoContentInTime {
                return .failure(
                    .gatewayError(status: 504, message: "\(error)", code: "upstream_timeout", elapsedMs: elapsed()))
            } catch {
                return .failure(Self.transportFailure(error, elapsedMs: elapsed()))
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
                        code: "stream_empty", elapsedMs: elapsed()))
            }
            if exchange.logValues["llm_time_to_first_token"] == nil || relay.bytesRead == 0 {
                exchange.logValues["llm_time_to_first_token"] = String(elapsed())
            }
            let step = relay.feed(chunk)
            if let error = step.error {
                return .failure(
                    .gatewayError(
                        status: 502, message: "upstream stream failed before content: \(error)", code: "stream_error",
                        elapsedMs: elapsed()))
            }
            first = step.out
            finished = step.done
        }

        ai.relayingStream = true
        exchange.upstreamWait += ContinuousClock.now - started
        var fields = headers
        fields[.contentType] = contentType
        fields[.cacheControl] = "no-cache"
        // Watching for the client going away (to cancel the upstream at once) consumes the
        // connection, so it is not reused: say so, or a keep-alive client would send its next
        // request into a closing socket.
        fields[.connection] = "close"
        let settings = self.settings
        let logger = context.logger
        let initial = first
        let alreadyDone = finished
        let body = ResponseBody { writer in
            defer { ai.activeConnection?.decrement() }
            try await exchange.request.body.consumeWithCancellationOnInboundClose { _ in
                try await writer.write(ByteBuffer(bytes: initial))
                var done = alreadyDone
                var broken: String?
                while !done {
                    if let max = settings.maxStreamDurationMs, elapsed() > max {
                        broken = "max_stream_duration_ms exceeded"
                        logger.warning(
                            "aborting AI stream: \(broken!); bytes=\(relay.bytesRead) duration_ms=\(elapsed())")
                        break
                    }
                    let chunk: ByteBuffer?
                    do {
                        chunk = try await relay.next()
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        broken = "upstream stream failed: \(error)"
                        break
                    }
                    guard let chunk else {
                        if relay.inspector.isComplete {
                            // Complete but without `[DONE]`: finish it for the client.
                            if ai.clientProtocol == .openaiChat {
                                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                            }
                        } else {
                            broken = "upstream closed the stream before it was complete"
                        }
                        break
                    }
                    let step = relay.feed(chunk)
                    if !step.out.isEmpty { try await writer.write(ByteBuffer(bytes: step.out)) }
                    if let error = step.error {
                        broken = error
                        break
                    }
                    done = step.done
                    if let max = settings.maxResponseBytes, relay.bytesRead > max {
                        broken = "max_response_bytes exceeded"
                        break
                    }
                }
                self.finishStream(relay, exchange: exchange, ai: ai, elapsedMs: elapsed(), broken: broken)
                if let broken {
                    let event: JSONValue = [
                        "error": [
                            "message": .string(broken), "type": "upstream_error", "code": "stream_broken",
                        ]
                    ]
                    try await writer.write(ByteBuffer(string: "data: \(event.serialized())\n\n"))
                }
            }
            try await writer.finish(nil)
        }
        return .success(
            Response(status: HTTPResponse.Status(code: Int(response.status.code)), headers: fields, body: body))
    }

    func finishStream(_ relay: StreamRelay, exchange: Exchange, ai: AIExchange, elapsedMs: Int, broken: String?) {
        exchange.logValues["apisix_upstream_response_time"] = String(elapsedMs)
        exchange.upstreamResponseTime = .milliseconds(elapsedMs)
        if relay.inspector.hasToolCalls { exchange.logValues["llm_has_tool_calls"] = "true" }
        if !relay.inspector.usage.isEmpty { record(relay.inspector.usage, exchange, ai) }
        if let broken {
            exchange.logValues["llm_error_class"] = "stream_broken"
            let reason =
                broken.contains("max_") ? "limit" : broken.lowercased().contains("timed out") ? "timeout" : "upstream"
            context.metrics.streamError(reason: reason)
        }
        if let log = exchange.aiLog, log.payloads { log.responseText = relay.inspector.text.joined() }
        if let index = ai.picked {
            // Mid-stream failures count for passive health like failed requests.
            let failure: HealthState.Failure? =
                broken == nil ? nil : (broken!.contains("timed out") || broken!.contains("Timeout") ? .timeout : .tcp)
            health[index].reportLive(status: exchange.upstreamStatus, failure: failure)
        }
        if relay.malformedEvents > 0 {
            context.logger.warning("dropped \(relay.malformedEvents) malformed upstream stream events")
        }
    }
}

import AsyncHTTPClient
import NIOCore
import SwitchboardCore

/// Relays one upstream event stream: decodes events as bytes arrive, holds back events that
/// carry no content until content flows (so the attempt can still fail over), drops the
/// usage-only event the gateway asked for on the client's behalf, and stops at errors. Events
/// are inspected in the provider's protocol; with a translator they reach the client in its
/// own (every event goes through the translator, in order, held or not).
///
/// Used by one task at a time (the handler, then the response body writer), never
/// concurrently; hence the unchecked `Sendable`.
final class StreamRelay: @unchecked Sendable {
    private var iterator: HTTPClientResponse.Body.AsyncIterator
    /// The same body when the gateway's pool served it: its reads take a deadline themselves.
    private var pooled: UpstreamResponseBody.AsyncIterator?
    private var decoder = SSEDecoder()
    /// AWS's binary event stream (Bedrock), turned into events, instead of server-sent events.
    /// (Two properties rather than an enum: a decoder mutated inside an enum payload would copy
    /// its buffer on every read.)
    private var binary: EventStreamDecoder?
    private(set) var inspector: StreamInspector
    private let dropUsage: Bool
    /// A continuation: events without content before the first content (the second role
    /// chunk) are dropped rather than held.
    private let dropPreamble: Bool
    private var translator: (any StreamTranslator)?
    private var held: [UInt8] = []
    private(set) var committed = false
    private(set) var bytesRead = 0
    private(set) var malformedEvents = 0

    struct Step {
        var out: [UInt8] = []
        var error: String?
        var done = false
    }

    init(
        _ answer: UpstreamAnswer, proto: AIProtocol, dropUsage: Bool, keepText: Bool = false,
        dropPreamble: Bool = false, translator: (any StreamTranslator)? = nil
    ) {
        self.translator = translator
        if proto == .bedrockConverse { binary = EventStreamDecoder() }
        iterator = answer.response.body.makeAsyncIterator()
        pooled = answer.pooledBody?.makeAsyncIterator()
        inspector = StreamInspector(proto: proto, keepText: keepText)
        self.dropUsage = dropUsage
        self.dropPreamble = dropPreamble
    }

    func next() async throws -> ByteBuffer? {
        if pooled != nil { return try await pooled?.next() }
        return try await iterator.next()
    }

    /// Thrown when no content arrived before the deadline.
    struct NoContentInTime: Error, CustomStringConvertible {
        var description: String { "no content from upstream within the timeout" }
    }

    /// The next read, or ``NoContentInTime`` once `deadline` passes. An upstream that keeps the
    /// connection busy with comments or empty events cannot hold the attempt past `timeout`.
    func next(before deadline: ContinuousClock.Instant) async throws -> ByteBuffer? {
        if pooled != nil {
            let left = TimeAmount(max(deadline - .now, .zero))  // clamped, never a trap
            do {
                return try await pooled?.next(deadline: .now() + left)
            } catch is UpstreamConnection.ReadDeadlineExceeded {
                throw NoContentInTime()
            }
        }
        return try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask { try await self.next() }
            group.addTask {
                try await Task.sleep(until: deadline, clock: .continuous)
                throw NoContentInTime()
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    /// Processes one upstream read. Before content, everything is held; the step that brings
    /// content (or the end) returns the held bytes followed by the new ones.
    func feed(_ chunk: ByteBuffer) -> Step {
        bytesRead += chunk.readableBytes
        var step = Step()
        let events: [SSEEvent]
        if binary != nil {
            do {
                events = try binary?.feed(chunk.readableBytesView) ?? []
            } catch {
                step.error = "upstream sent \(error)"
                return step
            }
        } else {
            do {
                events = try decoder.feed(chunk.readableBytesView)
            } catch {
                step.error = "upstream sent an event larger than \(SSEDecoder.maxPending) bytes"
                return step
            }
        }
        for event in events {
            switch inspector.inspect(event) {
            case .preamble:
                if !(dropPreamble && !committed) { emit(relayed(event), into: &step) }
            case .other:
                emit(relayed(event), into: &step)
            case .usageOnly:
                // A translator takes the usage into its own end events.
                if translator != nil || !dropUsage { emit(relayed(event), into: &step) }
            case .content:
                commit(into: &step)
                step.out += relayed(event)
            case .done:
                commit(into: &step)
                step.out += relayed(event)
                step.done = true
                return step
            case .error(let message):
                step.error = message
                return step
            case .malformed:
                malformedEvents += 1
            }
        }
        return step
    }

    /// Commits what is held (the upstream ended cleanly without content, e.g. an empty answer).
    func flushHeld() -> [UInt8] {
        var step = Step()
        commit(into: &step)
        return step.out
    }

    /// The Anthropic text block the client has open: the translator's, or the provider's own.
    var clientTextBlock: Int? {
        if let chat = translator as? ChatToMessagesStream { return chat.openTextBlock }
        return inspector.proto == .anthropicMessages ? inspector.textBlock : nil
    }

    /// What the client gets for an event: itself, or its translation.
    private func relayed(_ event: SSEEvent) -> [UInt8] {
        guard translator != nil else { return event.raw }
        return translator?.translate(event) ?? []
    }

    /// What ends a stream that is complete but closed (or went quiet) without the protocol's end
    /// event: `[DONE]` for OpenAI chat, a translator's end events; nothing for the others.
    func closing() -> [UInt8] {
        if translator != nil { return translator?.finish() ?? [] }
        return inspector.proto == .openaiChat ? Array("data: [DONE]\n\n".utf8) : []
    }

    private func emit(_ raw: [UInt8], into step: inout Step) {
        if committed { step.out += raw } else { held += raw }
    }

    private func commit(into step: inout Step) {
        guard !committed else { return }
        committed = true
        step.out += held
        held = []
    }
}

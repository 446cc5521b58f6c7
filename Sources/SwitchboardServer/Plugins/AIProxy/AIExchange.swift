import CoreMetrics
import SwitchboardCore

/// What the AI proxy knows about one request across its attempts. Confined to the request,
/// like ``Exchange``.
public final class AIExchange: @unchecked Sendable {
    public let clientProtocol: AIProtocol
    public let body: JSONValue
    public let streaming: Bool
    public let clientModel: String?
    /// Indices of instances already tried in this request.
    public var tried: Set<Int> = []
    /// The instance the next (or current) attempt goes to.
    public var picked: Int?
    public var attempts = 0
    /// Every attempt so far, for the dashboard's request trace.
    public var attemptTrace: [AttemptTrace] = []
    public var usage: TokenUsage?
    /// The answer is being relayed as a stream; its outcome is known only at its end.
    public var relayingStream = false
    /// The active-connections gauge of a relayed stream, decremented when it ends.
    var activeConnection: Meter?
    /// The instance whose in-flight count the relayed stream holds.
    var activeInstance: InstanceHealth?
    /// The instance picked (possibly claiming a half-open trial) whose outcome has not been
    /// reported yet; released in the log phase if the request never reached a verdict.
    var pendingVerdict: Int?

    init(clientProtocol: AIProtocol, body: JSONValue, streaming: Bool) {
        self.clientProtocol = clientProtocol
        self.body = body
        self.streaming = streaming
        self.clientModel = body["model"]?.stringValue
    }
}

extension Exchange {
    /// The AI proxy's state for this request (set in the access phase).
    public var ai: AIExchange? {
        get { extensions["ai"] as? AIExchange }
        set { extensions["ai"] = newValue }
    }
}

/// What `logging.summaries` / `logging.payloads` add to JSON access log lines.
public final class AILogRecord: @unchecked Sendable {
    public let summaries: Bool
    public let payloads: Bool
    public var messages: JSONValue = .null
    public var responseText = ""

    init(summaries: Bool, payloads: Bool) {
        self.summaries = summaries
        self.payloads = payloads
    }
}

extension Exchange {
    public var aiLog: AILogRecord? {
        get { extensions["ai.log"] as? AILogRecord }
        set { extensions["ai.log"] = newValue }
    }
}

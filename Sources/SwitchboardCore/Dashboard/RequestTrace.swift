/// One attempt of a request against a provider instance, as the dashboard's trace shows it:
/// "why did this fail over" is the list of these.
public struct AttemptTrace: Sendable, Equatable {
    public var instance: String
    /// `nil` for the attempt that answered.
    public var errorClass: String?
    public var status: Int
    public var durationMs: Int
    /// How long the gateway waited before the next attempt (a retry's backoff), if any.
    public var retryWaitMs: Int?

    public init(instance: String, errorClass: String?, status: Int, durationMs: Int, retryWaitMs: Int? = nil) {
        self.instance = instance
        self.errorClass = errorClass
        self.status = status
        self.durationMs = durationMs
        self.retryWaitMs = retryWaitMs
    }
}

/// One finished request as the dashboard's trace lists it. Never holds a payload or a key.
public struct RequestTrace: Sendable {
    public var requestID: String
    /// Seconds since 1970.
    public var time: Double
    public var method: String
    public var path: String
    public var routeID: String?
    public var consumer: String?
    public var status: Int
    public var modelAsked: String?
    public var modelServed: String?
    public var instance: String?
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var ttftMs: Int?
    public var durationMs: Int
    public var errorClass: String?
    public var attempts: [AttemptTrace]

    public init(
        requestID: String, time: Double, method: String, path: String, routeID: String?, consumer: String?,
        status: Int, modelAsked: String?, modelServed: String?, instance: String?, promptTokens: Int?,
        completionTokens: Int?, ttftMs: Int?, durationMs: Int, errorClass: String?, attempts: [AttemptTrace]
    ) {
        self.requestID = requestID
        self.time = time
        self.method = method
        self.path = path
        self.routeID = routeID
        self.consumer = consumer
        self.status = status
        self.modelAsked = modelAsked
        self.modelServed = modelServed
        self.instance = instance
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.ttftMs = ttftMs
        self.durationMs = durationMs
        self.errorClass = errorClass
        self.attempts = attempts
    }
}

/// The last `capacity` elements written, oldest overwritten first: fixed memory whatever the
/// traffic.
public struct RingBuffer<Element: Sendable>: Sendable {
    public let capacity: Int
    private var storage: [Element] = []
    private var next = 0

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        storage.reserveCapacity(self.capacity)
    }

    /// Appends `element`; returns the element it pushed out, if any (so a caller holding a
    /// lock can release it after).
    @discardableResult
    public mutating func append(_ element: Element) -> Element? {
        defer { next = (next + 1) % capacity }
        if storage.count < capacity {
            storage.append(element)
            return nil
        }
        let evicted = storage[next]
        storage[next] = element
        return evicted
    }

    public var count: Int { storage.count }

    /// Up to `limit` elements that `matching` keeps, newest first, without copying the rest.
    public func newest(limit: Int, where matching: (Element) -> Bool) -> [Element] {
        var found: [Element] = []
        var index = next
        for _ in 0..<storage.count {
            guard found.count < limit else { break }
            index = (index - 1 + storage.count) % storage.count
            if matching(storage[index]) { found.append(storage[index]) }
        }
        return found
    }

    /// Newest first.
    public var newestFirst: [Element] { newest(limit: storage.count) { _ in true } }
}

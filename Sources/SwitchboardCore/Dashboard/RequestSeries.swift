/// What one finished request adds to the dashboard's time series.
public struct SeriesSample: Sendable {
    public var failed: Bool
    /// The error class of a failed request (`ErrorClass`'s raw values, or `other`).
    public var errorClass: String?
    public var promptTokens: Int
    public var completionTokens: Int
    public var ttftMs: Double?
    public var durationMs: Double

    public init(
        failed: Bool, errorClass: String?, promptTokens: Int, completionTokens: Int, ttftMs: Double?,
        durationMs: Double
    ) {
        self.failed = failed
        self.errorClass = errorClass
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.ttftMs = ttftMs
        self.durationMs = durationMs
    }
}

/// The requests of one time span: counts, tokens, errors by class and latency histograms.
public struct SeriesBucket: Sendable, Equatable {
    /// The error classes counted separately: every `ErrorClass`, then `other`.
    public static let errorClasses = ErrorClass.allCases.map(\.rawValue) + ["other"]

    public var requests: UInt32 = 0
    public var errors: UInt32 = 0
    public var promptTokens: UInt64 = 0
    public var completionTokens: UInt64 = 0
    public var errorsByClass: [UInt32] = Array(repeating: 0, count: SeriesBucket.errorClasses.count)
    /// Failed attempts on the instance by class, also those another instance then answered.
    public var attemptFailuresByClass: [UInt32] = Array(repeating: 0, count: SeriesBucket.errorClasses.count)
    public var ttft = LatencyHistogram()
    public var duration = LatencyHistogram()

    public init() {}

    public mutating func add(_ sample: SeriesSample) {
        requests = requests.saturatingAdd(1)
        promptTokens = promptTokens.saturatingAdd(UInt64(max(0, sample.promptTokens)))
        completionTokens = completionTokens.saturatingAdd(UInt64(max(0, sample.completionTokens)))
        if sample.failed {
            errors = errors.saturatingAdd(1)
            let index =
                sample.errorClass.flatMap { Self.errorClasses.firstIndex(of: $0) } ?? Self.errorClasses.count - 1
            errorsByClass[index] = errorsByClass[index].saturatingAdd(1)
        }
        if let ttft = sample.ttftMs { self.ttft.record(milliseconds: ttft) }
        duration.record(milliseconds: sample.durationMs)
    }

    public mutating func addAttemptFailure(_ errorClass: String) {
        let index = Self.errorClasses.firstIndex(of: errorClass) ?? Self.errorClasses.count - 1
        attemptFailuresByClass[index] = attemptFailuresByClass[index].saturatingAdd(1)
    }

    public mutating func add(_ other: SeriesBucket) {
        requests = requests.saturatingAdd(other.requests)
        errors = errors.saturatingAdd(other.errors)
        promptTokens = promptTokens.saturatingAdd(other.promptTokens)
        completionTokens = completionTokens.saturatingAdd(other.completionTokens)
        for i in errorsByClass.indices {
            errorsByClass[i] = errorsByClass[i].saturatingAdd(other.errorsByClass[i])
            attemptFailuresByClass[i] = attemptFailuresByClass[i].saturatingAdd(other.attemptFailuresByClass[i])
        }
        ttft.add(other.ttft)
        duration.add(other.duration)
    }
}

/// A fixed number of consecutive buckets of `span` seconds each, in a ring: the bucket of a
/// time is found by its index, and a slot last written for an older span is reset before use.
/// Memory does not depend on traffic: `capacity` buckets, allocated once.
public struct BucketRing: Sendable {
    public let span: Int
    public let capacity: Int
    private var starts: [Int]
    private var buckets: [SeriesBucket]

    public init(span: Int, capacity: Int) {
        self.span = max(1, span)
        self.capacity = max(1, capacity)
        starts = Array(repeating: -1, count: self.capacity)
        buckets = Array(repeating: SeriesBucket(), count: self.capacity)
    }

    private func slot(_ number: Int) -> Int { ((number % capacity) + capacity) % capacity }

    public mutating func add(_ sample: SeriesSample, at seconds: Int) {
        update(at: seconds) { $0.add(sample) }
    }

    public mutating func addAttemptFailure(_ errorClass: String, at seconds: Int) {
        update(at: seconds) { $0.addAttemptFailure(errorClass) }
    }

    private mutating func update(at seconds: Int, _ change: (inout SeriesBucket) -> Void) {
        let number = seconds / span
        let index = slot(number)
        if starts[index] != number {
            starts[index] = number
            buckets[index] = SeriesBucket()
        }
        change(&buckets[index])
    }

    /// The buckets from `from` to `to` (seconds, inclusive of the span containing `to`), oldest
    /// first, each with its start time; spans with no traffic are empty buckets.
    public func buckets(from: Int, to: Int) -> [(start: Int, bucket: SeriesBucket)] {
        let last = to / span
        let first = max(from / span, last - capacity + 1)
        guard first <= last else { return [] }
        return (first...last).map { number in
            let index = slot(number)
            return (number * span, starts[index] == number ? buckets[index] : SeriesBucket())
        }
    }
}

/// One route-instance's history: per-minute buckets for the last hour and 15-minute buckets
/// for the last day.
public struct RequestSeries: Sendable {
    public var minutes = BucketRing(span: 60, capacity: 60)
    public var quarters = BucketRing(span: 900, capacity: 97)

    public init() {}

    public mutating func add(_ sample: SeriesSample, at seconds: Int) {
        minutes.add(sample, at: seconds)
        quarters.add(sample, at: seconds)
    }

    public mutating func addAttemptFailure(_ errorClass: String, at seconds: Int) {
        minutes.addAttemptFailure(errorClass, at: seconds)
        quarters.addAttemptFailure(errorClass, at: seconds)
    }
}

/// A quota: at most `limit` units (tokens) per fixed window of `seconds`.
public struct QuotaWindow: Sendable, Equatable {
    public var limit: Int
    public var seconds: Int

    public init(limit: Int, seconds: Int) {
        self.limit = limit
        self.seconds = seconds
    }
}

/// A counter as seen at one moment.
public struct QuotaState: Sendable, Equatable {
    public var limit: Int
    public var consumed: Int
    /// Estimates of requests admitted on this counter and still in flight.
    public var reserved: Int
    /// Seconds until the window ends (exactly the window length for its first request).
    public var resetIn: Double

    public init(limit: Int, consumed: Int, reserved: Int, resetIn: Double) {
        self.limit = limit
        self.consumed = consumed
        self.reserved = reserved
        self.resetIn = resetIn
    }

    /// What the `Remaining` header says: the quota left before this request's own cost.
    public var remaining: Int { max(0, Saturating.subtract(limit, Saturating.add(consumed, reserved))) }
    /// Admission rule: spent plus promised must stay under the limit.
    public var admits: Bool { Saturating.add(consumed, reserved) < limit }
}

/// A request's claim on a counter, replaced by the real usage when it ends.
public struct QuotaReservation: Sendable, Equatable {
    /// Where a reservation was counted, and so where it is settled.
    public enum Counted: Sendable, Equatable {
        /// In the counters that made it.
        case counters
        /// In a node's batch of a shared counter (`sync_interval`), sent with the next sync.
        case batch
        /// In this node's own counters while the shared ones could not be reached.
        case fallback
    }

    public var key: String
    public var amount: Int
    /// The window the reservation was made in; a reservation from an expired window is not
    /// taken off the new window's `reserved`.
    public var windowStart: Double
    public var counted: Counted

    public init(key: String, amount: Int, windowStart: Double, counted: Counted = .counters) {
        self.key = key
        self.amount = amount
        self.windowStart = windowStart
        self.counted = counted
    }
}

public enum QuotaDecision: Sendable, Equatable {
    /// Admitted; `state` is the counter before this request.
    case admitted(QuotaReservation, state: QuotaState)
    case rejected(state: QuotaState)
}

/// Where quota counters live. Local memory today; a shared backend (PostgreSQL for cluster
/// mode) implements the same four operations without touching the plugin.
public protocol QuotaCounterStore: Sendable {
    /// Admits a request if `consumed + reserved < limit`, reserving `estimate` for it.
    func reserve(_ key: String, window: QuotaWindow, estimate: Int) -> QuotaDecision
    /// Replaces the reservation with what the request really used.
    func settle(_ reservation: QuotaReservation, actual: Int)
    /// Drops the reservation (the request failed and used nothing).
    func release(_ reservation: QuotaReservation)
    /// The counter without changing it.
    func peek(_ key: String, window: QuotaWindow) -> QuotaState
    /// Folds a finished request's completion size into the counter's running average, which
    /// estimates requests without `max_tokens`; it lives and is evicted with its counter.
    func recordCompletion(_ key: String, completion: Int)
    /// The running average completion on `key` (0 when unknown).
    func averageCompletion(_ key: String) -> Int
}

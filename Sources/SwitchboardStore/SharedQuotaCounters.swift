import SwitchboardCore

/// One counter's current window as the shared store sees it. Windows are aligned to the
/// database's clock (`floor(now / seconds) * seconds`), so every node agrees on where a window
/// starts and ends without asking the others.
public struct SharedQuotaWindow: Sendable, Equatable {
    public var key: String
    public var windowStart: Int64
    public var consumed: Int
    public var reserved: Int
    /// Seconds until the window ends.
    public var resetIn: Double

    public init(key: String, windowStart: Int64, consumed: Int, reserved: Int, resetIn: Double) {
        self.key = key
        self.windowStart = windowStart
        self.consumed = consumed
        self.reserved = reserved
        self.resetIn = resetIn
    }

    public func state(limit: Int) -> QuotaState {
        QuotaState(limit: limit, consumed: consumed, reserved: reserved, resetIn: resetIn)
    }
}

/// A change to a shared counter: a settled reservation (`reserved` negative, `consumed` what the
/// request used), a released one, or a node's batch of them. A `reserved` change for a window
/// that has ended is dropped; `consumed` always counts in the current window (a request that
/// straddles the end of a window is charged to the new one, as with local counters).
public struct QuotaDelta: Sendable, Equatable {
    public var key: String
    public var windowStart: Int64
    public var reserved: Int
    public var consumed: Int

    public init(key: String, windowStart: Int64, reserved: Int, consumed: Int) {
        self.key = key
        self.windowStart = windowStart
        self.reserved = reserved
        self.consumed = consumed
    }
}

/// Token counters shared by the nodes of a cluster (`ai-rate-limiting` with `policy: cluster`):
/// the reserve → settle → release protocol of ``QuotaCounterStore``, each step atomic in the
/// shared store and one round trip.
public protocol SharedQuotaCounters: Sendable {
    /// Admits when `consumed + reserved < limit` in the current window, reserving `estimate`.
    /// The window returned is the one before this request's reservation.
    func reserve(_ key: String, window: QuotaWindow, estimate: Int) async throws -> (
        admitted: Bool, window: SharedQuotaWindow
    )
    /// Applies settlements and releases (at most one per key and window); returns each key's
    /// current window after them. `batch` names the call: a batch sent again after an error
    /// (whose first attempt may have been applied, its answer lost) is applied at most once,
    /// and then answers no windows.
    func apply(_ deltas: [QuotaDelta], batch: String) async throws -> [SharedQuotaWindow]
    /// The current windows of `counters` without changing them.
    func peek(_ counters: [(key: String, seconds: Int)]) async throws -> [SharedQuotaWindow]
    /// Deletes windows that ended more than a minute ago.
    func removeExpiredWindows() async throws
    /// An error of the operations above in one line, for logs and 503 answers (no credentials).
    func describe(_ error: any Error) -> String
}

extension SharedQuotaCounters {
    public func describe(_ error: any Error) -> String { "\(error)" }
}

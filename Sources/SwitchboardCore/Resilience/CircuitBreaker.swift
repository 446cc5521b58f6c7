/// `breaker` of `ai-proxy-multi`.
public struct BreakerPolicy: Sendable, Equatable, CustomStringConvertible {
    public var failures = 3
    public var openMs = 10000

    public init(failures: Int = 3, openMs: Int = 10000) {
        self.failures = failures
        self.openMs = openMs
    }

    public init(_ json: JSONValue) {
        failures = json["failures"]?.intValue ?? failures
        openMs = json["open_ms"]?.intValue ?? openMs
    }

    public var description: String { "breaker(\(failures), \(openMs))" }
}

/// A per-instance circuit breaker: closed until `failures` consecutive instance failures,
/// then open (no traffic) for `open_ms`, then half-open (exactly one trial request), closed
/// again by the first success. A value type; the owner keeps it behind a lock.
public struct CircuitBreaker: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case closed(failures: Int)
        case open(untilMs: Int)
        /// One trial is in flight since `sinceMs`. A trial that never reports (its request was
        /// dropped before reaching the upstream) expires after `open_ms`, so the slot cannot leak.
        case halfOpen(sinceMs: Int)
    }

    public let policy: BreakerPolicy
    public private(set) var state: State = .closed(failures: 0)
    /// Times the breaker opened (for the control API).
    public private(set) var opened = 0

    public init(policy: BreakerPolicy) {
        self.policy = policy
    }

    public var name: String {
        switch state {
        case .closed: return "closed"
        case .open: return "open"
        case .halfOpen: return "half_open"
        }
    }

    /// Whether a request may go to the instance now; an open breaker whose time is up lets one
    /// trial through and turns half-open.
    public mutating func admit(nowMs: Int) -> Bool {
        switch state {
        case .closed: return true
        case .halfOpen(let since):
            guard nowMs >= since + policy.openMs else { return false }
            state = .halfOpen(sinceMs: nowMs)
            return true
        case .open(let until):
            guard nowMs >= until else { return false }
            state = .halfOpen(sinceMs: nowMs)
            return true
        }
    }

    /// Available without claiming the trial (listings).
    public func isAvailable(nowMs: Int) -> Bool {
        switch state {
        case .closed: return true
        case .halfOpen(let since): return nowMs >= since + policy.openMs
        case .open(let until): return nowMs >= until
        }
    }

    /// An instance failure; returns `true` when this opened the breaker.
    public mutating func failed(nowMs: Int) -> Bool {
        switch state {
        case .closed(let n):
            if n + 1 >= policy.failures {
                state = .open(untilMs: nowMs + policy.openMs)
                opened += 1
                return true
            }
            state = .closed(failures: n + 1)
            return false
        case .halfOpen, .open:
            state = .open(untilMs: nowMs + policy.openMs)
            opened += 1
            return true
        }
    }

    /// The instance answered; returns `true` when this closed an open or half-open breaker.
    public mutating func succeeded() -> Bool {
        if case .closed = state {
            state = .closed(failures: 0)
            return false
        }
        state = .closed(failures: 0)
        return true
    }

    /// Another node of the cluster saw the instance fail and opened its breaker: stay open
    /// until `untilMs` too (an opening here that lasts longer is kept).
    public mutating func openedElsewhere(untilMs: Int) {
        if case .open(let until) = state, until >= untilMs { return }
        state = .open(untilMs: untilMs)
    }

    /// A trial ended without a verdict (the client left): let the next request try.
    public mutating func trialAbandoned(nowMs: Int) {
        if case .halfOpen = state { state = .open(untilMs: nowMs) }
    }
}

import Synchronization

/// In-memory fixed-window counters for one gateway process.
public final class LocalQuotaCounters: QuotaCounterStore {
    struct Counter {
        var windowStart: Double
        var seconds: Int
        var consumed = 0
        var reserved = 0
        /// Running average completion, carried from window to window.
        var averageCompletion: Double?
    }

    private let counters = Mutex<[String: Counter]>([:])
    private let now: @Sendable () -> Double
    private let operations = Atomic<Int>(0)

    /// - Parameter now: seconds on a monotonic clock (injectable for tests).
    public init(now: @escaping @Sendable () -> Double = { MonotonicClock.seconds() }) {
        self.now = now
    }

    /// The counter for `key`, started anew when its window ended.
    private func current(_ counters: inout [String: Counter], _ key: String, _ window: QuotaWindow, _ t: Double)
        -> Counter
    {
        if let counter = counters[key], t < counter.windowStart + Double(counter.seconds) { return counter }
        var fresh = Counter(windowStart: t, seconds: window.seconds)
        fresh.averageCompletion = counters[key]?.averageCompletion
        counters[key] = fresh
        return fresh
    }

    private func state(_ counter: Counter, _ window: QuotaWindow, _ t: Double) -> QuotaState {
        QuotaState(
            limit: window.limit, consumed: counter.consumed, reserved: counter.reserved,
            resetIn: counter.windowStart + Double(counter.seconds) - t)
    }

    public func reserve(_ key: String, window: QuotaWindow, estimate: Int) -> QuotaDecision {
        let t = now()
        sweepOccasionally(t)
        return counters.withLock { counters in
            var counter = current(&counters, key, window, t)
            let before = state(counter, window, t)
            guard before.admits else { return .rejected(state: before) }
            let amount = Saturating.count(estimate)
            counter.reserved = Saturating.add(counter.reserved, amount)
            counters[key] = counter
            return .admitted(
                QuotaReservation(key: key, amount: amount, windowStart: counter.windowStart), state: before)
        }
    }

    public func settle(_ reservation: QuotaReservation, actual: Int) {
        let t = now()
        counters.withLock { counters in
            guard var counter = counters[reservation.key] else { return }
            if t >= counter.windowStart + Double(counter.seconds) {
                let average = counter.averageCompletion
                counter = Counter(windowStart: t, seconds: counter.seconds)
                counter.averageCompletion = average
            }
            if counter.windowStart == reservation.windowStart {
                counter.reserved = max(0, counter.reserved - reservation.amount)
            }
            counter.consumed = Saturating.add(counter.consumed, Saturating.count(actual))
            counters[reservation.key] = counter
        }
    }

    public func release(_ reservation: QuotaReservation) {
        counters.withLock { counters in
            guard var counter = counters[reservation.key], counter.windowStart == reservation.windowStart else {
                return
            }
            counter.reserved = max(0, counter.reserved - reservation.amount)
            counters[reservation.key] = counter
        }
    }

    public func peek(_ key: String, window: QuotaWindow) -> QuotaState {
        let t = now()
        return counters.withLock { counters in
            if let counter = counters[key], t < counter.windowStart + Double(counter.seconds) {
                return state(counter, window, t)
            }
            return QuotaState(limit: window.limit, consumed: 0, reserved: 0, resetIn: Double(window.seconds))
        }
    }

    public func recordCompletion(_ key: String, completion: Int) {
        let value = Double(Saturating.count(completion))
        counters.withLock { counters in
            guard var counter = counters[key] else { return }
            counter.averageCompletion = (counter.averageCompletion ?? value) * 0.8 + value * 0.2
            counters[key] = counter
        }
    }

    public func averageCompletion(_ key: String) -> Int {
        Saturating.int((counters.withLock { $0[key]?.averageCompletion } ?? 0).rounded(.up))
    }

    /// Drops expired counters now and then, so keys that stop being used do not pile up.
    private func sweepOccasionally(_ t: Double) {
        guard operations.wrappingAdd(1, ordering: .relaxed).newValue % 4096 == 0 else { return }
        counters.withLock { counters in
            counters = counters.filter { t < $0.value.windowStart + Double($0.value.seconds) || $0.value.reserved > 0 }
        }
    }
}

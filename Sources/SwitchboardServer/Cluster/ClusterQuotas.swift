import Foundation
import Logging
import ServiceLifecycle
import SwitchboardCore
import SwitchboardStore
import Synchronization

/// `ai-rate-limiting` with `policy: cluster` on one node: counters shared by every node through
/// the cluster's database, so that N nodes together admit what one node would.
///
/// A reservation is one round trip, made while the request waits (it decides admission). Its
/// settlement or release is not: the log phase queues it and a background loop sends whatever
/// has queued in one batch, so that finishing a request never waits for the database and a busy
/// node needs far fewer round trips than requests.
///
/// With `sync_interval`, a node admits locally between syncs: the first request of a window
/// reserves in the database and opens a *lease* that holds the cluster's totals; later requests
/// are admitted against the lease plus this node's own changes, which are sent (and the totals
/// refreshed) every `sync_interval`. Each node may then admit what the others admitted since its
/// last sync: the bound becomes `limit - 1 + one request's cost + (N - 1) × what one node admits
/// in one interval` (never more than N times the single-node bound).
final class ClusterQuotas: Sendable {
    /// A reservation's answer, or why the shared counters could not give one.
    enum Outcome: Sendable, Equatable {
        case decided(QuotaDecision)
        case unavailable(String)
    }

    let shared: any SharedQuotaCounters
    let logger: Logger
    /// Counts while the shared counters cannot be reached and `allow_degradation` lets requests
    /// through (fail open).
    let fallback: LocalQuotaCounters
    private let now: @Sendable () -> Double
    private let queue = Mutex(SettleQueue())
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>
    private let leases = Mutex<[String: Lease]>([:])
    /// The last window the database showed for each counter, for the instance picker's
    /// synchronous "has quota left?" (refreshed by ``prepare(_:)`` before each pick).
    private let seen = Mutex<[String: Seen]>([:])
    private let averages = Mutex<[String: Double]>([:])
    /// When the shared counters became unreachable (logged once), `nil` while they answer.
    private let outage = Mutex<Double?>(nil)
    private let degraded = Atomic(false)
    /// Batches sent to the database whose answer did not come (an error or a timeout): each is
    /// sent again, as it was and under its id, until the database acknowledges it. The database
    /// applies a batch id once, so a batch that was in fact committed is not counted twice.
    private let outbox = Mutex<[Batch]>([])
    /// Names this node's batches: a random prefix, then a sequence number.
    private let batchPrefix = UUID().uuidString
    private let batchNumber = Atomic(0)

    struct Batch {
        var id: String
        var deltas: [QuotaDelta]
    }

    /// How long a request waits for the database to decide its reservation. An answer that
    /// comes later is not lost: a reservation it made is released at once (see ``reserve``).
    static let decisionTimeout: Duration = .seconds(1)

    /// Settlements waiting for the next batch; bounded so that a long outage cannot grow it.
    struct SettleQueue {
        var deltas: [Slot: QuotaDelta] = [:]
        var overflowLogged = false
    }

    struct Slot: Hashable {
        var key: String
        var windowStart: Int64
    }

    /// A node's view of one counter between syncs (`sync_interval`).
    struct Lease {
        var windowStart: Int64
        /// When the window ends, on this node's monotonic clock.
        var endsAt: Double
        /// The cluster's totals at the last sync, this node's synced changes included.
        var consumed: Int
        var reserved: Int
        /// This node's changes since.
        var pendingReserved = 0
        var pendingConsumed = 0
        var interval: Double
        var syncedAt: Double
        var usedAt: Double

        func state(limit: Int, at t: Double) -> QuotaState {
            QuotaState(
                limit: limit, consumed: Saturating.add(consumed, pendingConsumed),
                reserved: max(0, Saturating.add(reserved, pendingReserved)), resetIn: max(0, endsAt - t))
        }

        var hasPending: Bool { pendingReserved != 0 || pendingConsumed != 0 }

        /// This node's changes since the last sync, as one change for the database.
        func pending(_ key: String) -> QuotaDelta {
            QuotaDelta(key: key, windowStart: windowStart, reserved: pendingReserved, consumed: pendingConsumed)
        }
    }

    struct Seen {
        var window: SharedQuotaWindow
        var endsAt: Double
    }

    static let maxPending = 100_000
    static let maxRemembered = 100_000
    /// How often expired windows are deleted from the database (by every node: it is idempotent
    /// and cheap with the expiry index).
    static let cleanupInterval = 60.0

    init(
        shared: any SharedQuotaCounters, logger: Logger,
        now: @escaping @Sendable () -> Double = { MonotonicClock.seconds() }
    ) {
        self.shared = shared
        self.logger = logger
        self.now = now
        fallback = LocalQuotaCounters(now: now)
        (wakes, wake) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    // MARK: - Requests

    /// Reserves `estimate` on `key` (locally against a lease with `syncInterval`, in seconds).
    /// When the database does not answer: with `allowDegradation`, this node's own counters
    /// decide (fail open); without, ``Outcome/unavailable(_:)`` (the request gets a 503).
    func reserve(
        _ key: String, window: QuotaWindow, estimate: Int, syncInterval: Double?, allowDegradation: Bool
    ) async -> Outcome {
        let amount = Saturating.count(estimate)
        if syncInterval != nil, let decided = reserveOnLease(key, window: window, amount: amount) {
            return .decided(decided)
        }
        do {
            let (admitted, current) = try await reserveInTime(key, window: window, amount: amount)
            reachable()
            remember(current)
            if let syncInterval { openLease(key, current, reserved: admitted ? amount : 0, interval: syncInterval) }
            let before = current.state(limit: window.limit)
            guard admitted else { return .decided(.rejected(state: before)) }
            return .decided(
                .admitted(
                    QuotaReservation(key: key, amount: amount, windowStart: Double(current.windowStart)), state: before)
            )
        } catch {
            let reason = shared.describe(error)
            unreachable(reason)
            guard allowDegradation else { return .unavailable(reason) }
            switch fallback.reserve(key, window: window, estimate: amount) {
            case .admitted(var reservation, let state):
                reservation.counted = .fallback
                return .decided(.admitted(reservation, state: state))
            case .rejected(let state):
                return .decided(.rejected(state: state))
            }
        }
    }

    /// The database's answer within ``decisionTimeout``. The query is not cancelled when the time
    /// is up (a cancelled query may still have committed, and nobody would know): the request is
    /// decided without it, and if the answer, when it comes, admitted, that reservation is
    /// released with the next batch.
    private func reserveInTime(_ key: String, window: QuotaWindow, amount: Int) async throws -> (
        admitted: Bool, window: SharedQuotaWindow
    ) {
        let shared = shared
        return try await BoundedRace.run(
            limit: Self.decisionTimeout, timeout: StoreUnavailable("no answer within \(Self.decisionTimeout)")
        ) {
            try await shared.reserve(key, window: window, estimate: amount)
        } whenLate: { late in
            guard case .success(let late) = late, late.admitted else { return }
            self.enqueue(QuotaDelta(key: key, windowStart: late.window.windowStart, reserved: -amount, consumed: 0))
        }
    }

    /// Settles a reservation with what the request used, or releases it (`actual` nil). Never
    /// waits: shared counters get it with the next batch.
    func finish(_ reservation: QuotaReservation, actual: Int?) {
        let used = actual.map(Saturating.count) ?? 0
        switch reservation.counted {
        case .fallback:
            if let actual { fallback.settle(reservation, actual: actual) } else { fallback.release(reservation) }
            return
        case .batch:
            let onLease = leases.withLock { leases -> Bool in
                guard var lease = leases[reservation.key], Double(lease.windowStart) == reservation.windowStart
                else { return false }
                lease.pendingReserved = Saturating.subtract(lease.pendingReserved, reservation.amount)
                lease.pendingConsumed = Saturating.add(lease.pendingConsumed, used)
                leases[reservation.key] = lease
                return true
            }
            if onLease { return }
        case .counters:
            break
        }
        enqueue(
            QuotaDelta(
                key: reservation.key, windowStart: Int64(reservation.windowStart), reserved: -reservation.amount,
                consumed: used))
    }

    /// The counter as last seen, for picking among instances without a round trip.
    func known(_ key: String, window: QuotaWindow) -> QuotaState {
        let t = now()
        if let state = leases.withLock({ leases in leases[key].flatMap { t < $0.endsAt ? $0 : nil } })?.state(
            limit: window.limit, at: t)
        {
            return state
        }
        if degraded.load(ordering: .relaxed) { return fallback.peek(key, window: window) }
        if let seen = seen.withLock({ $0[key] }), t < seen.endsAt {
            return QuotaState(
                limit: window.limit, consumed: seen.window.consumed, reserved: seen.window.reserved,
                resetIn: seen.endsAt - t)
        }
        return QuotaState(limit: window.limit, consumed: 0, reserved: 0, resetIn: Double(window.seconds))
    }

    /// Refreshes what ``known(_:window:)`` says about `counters` (one round trip for all of
    /// them; counters on a live lease need none). A failure leaves the last view in place.
    func prepare(_ counters: [(key: String, window: QuotaWindow)]) async {
        let t = now()
        let needed = leases.withLock { leases in
            counters.filter { counter in leases[counter.key].map { t >= $0.endsAt } ?? true }
        }
        guard !needed.isEmpty, !degraded.load(ordering: .relaxed) else { return }
        do {
            for window in try await shared.peek(needed.map { ($0.key, $0.window.seconds) }) { remember(window) }
        } catch {
            unreachable(shared.describe(error))
        }
    }

    /// The start of the window last seen for `key`.
    func lastWindowStart(_ key: String) -> Int64? {
        seen.withLock { $0[key]?.window.windowStart }
    }

    func recordCompletion(_ key: String, completion: Int) {
        let value = Double(Saturating.count(completion))
        averages.withLock { averages in
            if averages.count >= Self.maxRemembered, averages[key] == nil { averages.removeAll(keepingCapacity: true) }
            averages[key] = (averages[key] ?? value) * 0.8 + value * 0.2
        }
    }

    func averageCompletion(_ key: String) -> Int {
        Saturating.int((averages.withLock { $0[key] } ?? 0).rounded(.up))
    }

    // MARK: - Leases (sync_interval)

    /// Admits against the lease of `key` when there is a live one; `nil` when the database must
    /// decide (no lease yet, or its window ended).
    private func reserveOnLease(_ key: String, window: QuotaWindow, amount: Int) -> QuotaDecision? {
        let t = now()
        var retired: QuotaDelta?
        let decision = leases.withLock { leases -> QuotaDecision? in
            guard var lease = leases[key] else { return nil }
            guard t < lease.endsAt else {
                if lease.hasPending { retired = lease.pending(key) }
                leases[key] = nil
                return nil
            }
            lease.usedAt = t
            let before = lease.state(limit: window.limit, at: t)
            guard before.admits else {
                leases[key] = lease
                return .rejected(state: before)
            }
            lease.pendingReserved = Saturating.add(lease.pendingReserved, amount)
            leases[key] = lease
            return .admitted(
                QuotaReservation(key: key, amount: amount, windowStart: Double(lease.windowStart), counted: .batch),
                state: before)
        }
        if let retired { enqueue(retired) }
        return decision
    }

    private func openLease(_ key: String, _ current: SharedQuotaWindow, reserved: Int, interval: Double) {
        let t = now()
        var retired: QuotaDelta?
        leases.withLock { leases in
            if let existing = leases[key] {
                if existing.windowStart == current.windowStart { return }  // a request racing this one opened it
                if existing.hasPending { retired = existing.pending(key) }
            }
            leases[key] = Lease(
                windowStart: current.windowStart, endsAt: t + current.resetIn, consumed: current.consumed,
                reserved: Saturating.add(current.reserved, reserved), interval: interval, syncedAt: t, usedAt: t)
        }
        if let retired { enqueue(retired) }
    }

    /// Sends the changes of every lease whose interval is up and takes in the cluster's totals.
    func syncLeases() async {
        // Batches waiting for an acknowledgment: the database is not answering, and the leases
        // keep their changes until it does (the outbox stays bounded).
        guard outbox.withLock({ $0.isEmpty }) else { return }
        let t = now()
        var retired: [QuotaDelta] = []
        let due = leases.withLock { leases -> [QuotaDelta] in
            var due: [QuotaDelta] = []
            for (key, lease) in leases where t - lease.syncedAt >= lease.interval {
                // A lease nobody used for a while, or whose window ended, is given up.
                if t >= lease.endsAt || t - lease.usedAt > max(10, lease.interval * 10) {
                    if lease.hasPending { retired.append(lease.pending(key)) }
                    leases[key] = nil
                    continue
                }
                due.append(lease.pending(key))
            }
            return due
        }
        for delta in retired { enqueue(delta) }
        guard !due.isEmpty else { return }
        let batch = Batch(id: nextBatchID(), deltas: due)
        do {
            let windows = try await shared.apply(due, batch: batch.id)
            reachable()
            let byKey = Dictionary(windows.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
            let synced = now()
            leases.withLock { leases in
                for sent in due {
                    guard var lease = leases[sent.key], lease.windowStart == sent.windowStart else { continue }
                    lease.pendingReserved = Saturating.subtract(lease.pendingReserved, sent.reserved)
                    lease.pendingConsumed = Saturating.subtract(lease.pendingConsumed, sent.consumed)
                    lease.syncedAt = synced
                    if let window = byKey[sent.key], window.windowStart == lease.windowStart {
                        lease.consumed = window.consumed
                        lease.reserved = window.reserved
                        lease.endsAt = synced + window.resetIn
                    }
                    leases[sent.key] = lease
                }
            }
            for window in windows { remember(window) }
        } catch {
            unreachable(shared.describe(error))
            // The batch may have been applied: it goes to the outbox, to be sent again as it
            // is, and the leases count its changes as the cluster's (their view is unchanged).
            leases.withLock { leases in
                for sent in due {
                    guard var lease = leases[sent.key], lease.windowStart == sent.windowStart else { continue }
                    lease.pendingReserved = Saturating.subtract(lease.pendingReserved, sent.reserved)
                    lease.pendingConsumed = Saturating.subtract(lease.pendingConsumed, sent.consumed)
                    lease.reserved = Saturating.add(lease.reserved, sent.reserved)
                    lease.consumed = Saturating.add(lease.consumed, sent.consumed)
                    leases[sent.key] = lease
                }
            }
            outbox.withLock { $0.append(batch) }
            wake.yield()
        }
    }

    // MARK: - Settlements

    private func nextBatchID() -> String {
        "\(batchPrefix)-\(batchNumber.wrappingAdd(1, ordering: .relaxed).newValue)"
    }

    private func enqueue(_ delta: QuotaDelta) {
        let accepted = queue.withLock { queue -> Bool in
            let slot = Slot(key: delta.key, windowStart: delta.windowStart)
            if var existing = queue.deltas[slot] {
                existing.reserved = Saturating.add(existing.reserved, delta.reserved)
                existing.consumed = Saturating.add(existing.consumed, delta.consumed)
                queue.deltas[slot] = existing
                return true
            }
            guard queue.deltas.count < Self.maxPending else {
                if !queue.overflowLogged {
                    queue.overflowLogged = true
                    logger.error(
                        "quota settlements: \(Self.maxPending) counters waiting for the database; dropping new ones (their reservations expire with their window)"
                    )
                }
                return false
            }
            queue.deltas[slot] = delta
            return true
        }
        if accepted { wake.yield() }
    }

    /// Sends the outbox's batches again, then everything queued as one new batch. A batch that
    /// fails stays in the outbox, under its id, and what is queued meanwhile waits in the queue
    /// (bounded): the outbox never holds more than a lease sync's batch and one of the queue's.
    /// Returns whether everything went through (or there was nothing to send).
    @discardableResult
    func flushSettlements() async -> Bool {
        while let batch = outbox.withLock({ $0.first }) {
            guard await send(batch) else { return false }
        }
        let queued = queue.withLock { queue -> [QuotaDelta] in
            defer { queue.deltas.removeAll(keepingCapacity: true) }
            return Array(queue.deltas.values)
        }
        guard !queued.isEmpty else { return true }
        let batch = Batch(id: nextBatchID(), deltas: queued)
        outbox.withLock { $0.append(batch) }
        return await send(batch)
    }

    /// Sends one batch of the outbox; it leaves the outbox once the database acknowledged it.
    private func send(_ batch: Batch) async -> Bool {
        do {
            let windows = try await shared.apply(batch.deltas, batch: batch.id)
            outbox.withLock { outbox in outbox.removeAll { $0.id == batch.id } }
            reachable()
            for window in windows { remember(window) }
            return true
        } catch {
            unreachable(shared.describe(error))
            return false
        }
    }

    // MARK: - What was seen, and outages

    private func remember(_ window: SharedQuotaWindow) {
        let t = now()
        seen.withLock { seen in
            if seen.count >= Self.maxRemembered, seen[window.key] == nil {
                seen = seen.filter { t < $0.value.endsAt }
                if seen.count >= Self.maxRemembered { seen.removeAll(keepingCapacity: true) }
            }
            seen[window.key] = Seen(window: window, endsAt: t + window.resetIn)
        }
    }

    private func unreachable(_ reason: String) {
        let t = now()
        let first = outage.withLock { since -> Bool in
            guard since == nil else { return false }
            since = t
            return true
        }
        guard first else { return }
        degraded.store(true, ordering: .relaxed)
        logger.warning(
            "quota counters unreachable (\(reason)): routes with allow_degradation count on this node alone, the others answer 503"
        )
    }

    private func reachable() {
        guard degraded.load(ordering: .relaxed) else { return }
        let t = now()
        guard
            let since = outage.withLock({ since -> Double? in
                defer { since = nil }; return since
            })
        else { return }
        degraded.store(false, ordering: .relaxed)
        let seconds = Int((t - since).rounded())
        logger.notice("quota counters reachable again after \(seconds) s; counting in the cluster")
    }
}

/// Runs a node's ``ClusterQuotas`` background work: settlement batches as soon as there are
/// some, lease syncs at their interval, and the deletion of expired windows.
struct ClusterQuotaService: Service {
    let quotas: ClusterQuotas

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await quotas.settleLoop() }
                group.addTask { await quotas.syncLoop() }
            }
        }
        // What the last requests used still counts, on the way out.
        await quotas.syncLeases()
        await quotas.flushSettlements()
    }
}

extension ClusterQuotas {
    func settleLoop() async {
        for await _ in wakes {
            var delay = Duration.milliseconds(100)
            while !(await flushSettlements()) && !Task.isCancelled {
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }

    func syncLoop() async {
        var cleanedAt = now()
        while !Task.isCancelled {
            let interval = leases.withLock { $0.values.map(\.interval).min() } ?? 1
            try? await Task.sleep(for: .milliseconds(Int(min(1, max(0.005, interval / 2)) * 1000)))
            await syncLeases()
            if now() - cleanedAt >= Self.cleanupInterval {
                cleanedAt = now()
                try? await shared.removeExpiredWindows()
            }
        }
    }
}

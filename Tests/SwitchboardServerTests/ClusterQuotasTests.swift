import Logging
import SwitchboardCore
import SwitchboardStore
import Synchronization
import Testing

@testable import SwitchboardServer

/// ``ClusterQuotas`` against shared counters that answer late or lose an answer: what a busy
/// or flaky database does, without one. The database side of the same guarantees (a batch id
/// is applied once) is in ``ClusterTests``.
@Suite struct ClusterQuotasTests {
    /// Shared counters whose reservations answer after `reserveDelay` and whose first
    /// `lostAnswers` batches are applied but answered with an error (a timeout after the commit).
    final class FlakyCounters: SharedQuotaCounters, Sendable {
        let reserveDelay: Duration
        let lostAnswers: Int
        /// Every batch call, in order: (id, deltas).
        let calls = Mutex<[(String, [QuotaDelta])]>([])
        /// What the counter holds, applying each batch id once (`consumed`, `reserved`).
        let counter = Mutex((consumed: 0, reserved: 0, applied: Set<String>()))
        let applies: AsyncStream<String>
        private let applied: AsyncStream<String>.Continuation

        init(reserveDelay: Duration = .zero, lostAnswers: Int = 0) {
            self.reserveDelay = reserveDelay
            self.lostAnswers = lostAnswers
            (applies, applied) = AsyncStream.makeStream()
        }

        func reserve(_ key: String, window: QuotaWindow, estimate: Int) async throws -> (
            admitted: Bool, window: SharedQuotaWindow
        ) {
            if reserveDelay > .zero { try? await Task.sleep(for: reserveDelay) }
            let before = counter.withLock { counter in
                defer { counter.reserved += estimate }
                return counter
            }
            return (
                true,
                SharedQuotaWindow(
                    key: key, windowStart: 0, consumed: before.consumed, reserved: before.reserved, resetIn: 60)
            )
        }

        func apply(_ deltas: [QuotaDelta], batch: String) async throws -> [SharedQuotaWindow] {
            let call = calls.withLock { calls in
                calls.append((batch, deltas))
                return calls.count
            }
            counter.withLock { counter in
                guard counter.applied.insert(batch).inserted else { return }
                for delta in deltas {
                    counter.consumed += delta.consumed
                    counter.reserved += delta.reserved
                }
            }
            applied.yield(batch)
            if call <= lostAnswers { throw StoreUnavailable("no answer within 1.0 seconds") }
            return []
        }

        func peek(_ counters: [(key: String, seconds: Int)]) async throws -> [SharedQuotaWindow] { [] }
        func removeExpiredWindows() async throws {}
    }

    static let window = QuotaWindow(limit: 1000, seconds: 60)

    /// A reservation the database makes after the request was decided without it (503 here)
    /// would hold its tokens until the window ends; it is released as soon as its answer comes.
    @Test func aReservationAnsweredTooLateIsReleased() async throws {
        let shared = FlakyCounters(reserveDelay: ClusterQuotas.decisionTimeout + .milliseconds(500))
        let quotas = ClusterQuotas(shared: shared, logger: Logger(label: "test"))
        let settling = Task { await quotas.settleLoop() }
        defer { settling.cancel() }

        let outcome = await quotas.reserve(
            "k", window: Self.window, estimate: 11, syncInterval: nil, allowDegradation: false)
        guard case .unavailable(let reason) = outcome else {
            Issue.record("decided without the database's answer: \(outcome)")
            return
        }
        #expect(reason.contains("no answer within"))
        _ = try await first(of: shared.applies, within: .seconds(10))
        #expect(shared.counter.withLock { ($0.consumed, $0.reserved) } == (0, 0))
    }

    /// A batch applied whose answer was lost is sent again under the same id, so the database
    /// can tell it was applied; it never counts twice. What finished meanwhile waits for it.
    @Test func aBatchWhoseAnswerWasLostIsSentAgainUnderItsID() async throws {
        let shared = FlakyCounters(lostAnswers: 1)
        let quotas = ClusterQuotas(shared: shared, logger: Logger(label: "test"))
        let first = await quotas.reserve(
            "k", window: Self.window, estimate: 11, syncInterval: nil, allowDegradation: false)
        let second = await quotas.reserve(
            "k", window: Self.window, estimate: 11, syncInterval: nil, allowDegradation: false)
        guard case .decided(.admitted(let one, _)) = first, case .decided(.admitted(let two, _)) = second else {
            Issue.record("not admitted: \(first), \(second)")
            return
        }
        quotas.finish(one, actual: 10)
        #expect(await quotas.flushSettlements() == false)  // applied, but the answer was lost
        quotas.finish(two, actual: 7)
        #expect(await quotas.flushSettlements())

        let calls = shared.calls.withLock { $0 }
        try #require(calls.count == 3)
        #expect(calls[0].0 == calls[1].0)  // the same batch, again
        #expect(calls[0].1 == calls[1].1)
        #expect(calls[2].0 != calls[0].0)
        #expect(calls[2].1 == [QuotaDelta(key: "k", windowStart: 0, reserved: -11, consumed: 7)])
        #expect(shared.counter.withLock { ($0.consumed, $0.reserved) } == (17, 0))
    }

    /// With `sync_interval`, a sync whose answer was lost goes to the outbox the same way, and
    /// the node's view of the counter keeps what it sent (it admits no more than before).
    @Test func aLeaseSyncWhoseAnswerWasLostCountsOnce() async throws {
        let shared = FlakyCounters(lostAnswers: 1)
        let time = Mutex(0.0)
        let quotas = ClusterQuotas(shared: shared, logger: Logger(label: "test"), now: { time.withLock { $0 } })
        let window = QuotaWindow(limit: 30, seconds: 60)
        var admitted: [QuotaReservation] = []
        for _ in 0..<2 {
            let outcome = await quotas.reserve(
                "k", window: window, estimate: 10, syncInterval: 1, allowDegradation: false)
            guard case .decided(.admitted(let reservation, _)) = outcome else {
                Issue.record("not admitted: \(outcome)")
                return
            }
            admitted.append(reservation)
        }
        // The first reservation was made in the database, the second on the node's lease.
        #expect(admitted.map(\.counted) == [.counters, .batch])
        for reservation in admitted { quotas.finish(reservation, actual: 10) }
        time.withLock { $0 = 2 }
        let before = quotas.known("k", window: window)
        await quotas.syncLeases()  // applied, answer lost: into the outbox
        #expect(quotas.known("k", window: window) == before)
        #expect(await quotas.flushSettlements())  // the outbox, then the queue
        let calls = shared.calls.withLock { $0 }
        try #require(calls.count == 3)
        #expect(calls[0].0 == calls[1].0)
        #expect(calls[2].0 != calls[0].0)
        #expect(shared.counter.withLock { ($0.consumed, $0.reserved) } == (20, 0))
    }
}

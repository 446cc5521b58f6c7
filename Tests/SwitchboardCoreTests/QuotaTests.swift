import Synchronization
import Testing

@testable import SwitchboardCore

/// A clock the test moves by hand.
final class ManualClock: Sendable {
    private let value = Mutex(1000.0)
    func advance(_ seconds: Double) { value.withLock { $0 += seconds } }
    var now: @Sendable () -> Double { { [self] in self.value.withLock { $0 } } }
}

/// The reservation of an admitted decision; the test stops here (recorded) if it was refused.
func admitted(
    _ decision: QuotaDecision, _ comment: Comment, sourceLocation: SourceLocation = #_sourceLocation
) throws -> (QuotaReservation, QuotaState) {
    guard case .admitted(let reservation, let state) = decision else {
        Issue.record("\(comment): \(decision)", sourceLocation: sourceLocation)
        throw Refused()
    }
    return (reservation, state)
}

/// The state of a refused decision; the test stops here (recorded) if it was admitted.
func rejected(
    _ decision: QuotaDecision, _ comment: Comment, sourceLocation: SourceLocation = #_sourceLocation
) throws -> QuotaState {
    guard case .rejected(let state) = decision else {
        Issue.record("\(comment): \(decision)", sourceLocation: sourceLocation)
        throw Refused()
    }
    return state
}

/// Ends a test whose precondition failed (already recorded as an issue).
struct Refused: Error {}

@Suite struct LocalQuotaCountersTests {
    let window = QuotaWindow(limit: 100, seconds: 60)

    @Test func admitsWhileSpentPlusPromisedStaysUnderTheLimit() throws {
        let clock = ManualClock()
        let counters = LocalQuotaCounters(now: clock.now)
        let (first, before) = try admitted(counters.reserve("k", window: window, estimate: 60), "first request")
        #expect(before.remaining == 100 && before.resetIn == 60)
        let (second, state) = try admitted(counters.reserve("k", window: window, estimate: 60), "second request")
        #expect(state.reserved == 60 && state.remaining == 40)
        // 120 promised: a third concurrent request is refused.
        let refused = try rejected(counters.reserve("k", window: window, estimate: 1), "third request")
        #expect(refused.reserved == 120 && refused.remaining == 0)
        counters.release(first)
        counters.settle(second, actual: 30)
        #expect(counters.peek("k", window: window) == QuotaState(limit: 100, consumed: 30, reserved: 0, resetIn: 60))
    }

    /// Issue 19 item 8: the running-average completion per counter key (rule keys come from
    /// client headers) lives and dies with its counter, so keys do not pile up.
    @Test func theCompletionAverageIsEvictedWithItsCounter() throws {
        let clock = ManualClock()
        let counters = LocalQuotaCounters(now: clock.now)
        let short = QuotaWindow(limit: 1000, seconds: 1)
        let (reservation, _) = try admitted(counters.reserve("client-chosen", window: short, estimate: 1), "first")
        counters.settle(reservation, actual: 40)
        counters.recordCompletion("client-chosen", completion: 40)
        #expect(counters.averageCompletion("client-chosen") == 40)
        clock.advance(5)  // the window ended
        for _ in 0..<4096 { _ = counters.peek("other", window: short) }
        for _ in 0..<4096 { _ = counters.reserve("other", window: QuotaWindow(limit: .max, seconds: 60), estimate: 0) }
        #expect(counters.averageCompletion("client-chosen") == 0)
    }

    @Test func windowsAreFixedAndReset() throws {
        let clock = ManualClock()
        let counters = LocalQuotaCounters(now: clock.now)
        let (r, _) = try admitted(counters.reserve("k", window: window, estimate: 0), "first request")
        counters.settle(r, actual: 150)  // after-the-fact usage may overshoot
        clock.advance(20)
        let state = try rejected(counters.reserve("k", window: window, estimate: 0), "spent window")
        #expect(state.consumed == 150 && state.resetIn == 40)
        clock.advance(40)
        let (_, fresh) = try admitted(counters.reserve("k", window: window, estimate: 5), "new window")
        #expect(fresh.consumed == 0 && fresh.resetIn == 60)
    }

    @Test func aReservationFromAnOldWindowDoesNotFreeTheNewOnesPromises() throws {
        let clock = ManualClock()
        let counters = LocalQuotaCounters(now: clock.now)
        let (old, _) = try admitted(counters.reserve("k", window: window, estimate: 50), "old window")
        clock.advance(61)
        _ = try admitted(counters.reserve("k", window: window, estimate: 40), "new window")
        counters.settle(old, actual: 10)
        #expect(counters.peek("k", window: window).reserved == 40)
        #expect(counters.peek("k", window: window).consumed == 10)
    }
}

@Suite struct CostExpressionTests {
    @Test(arguments: [
        ("prompt_tokens + completion_tokens * 2", 8 + 5 * 2),
        ("(prompt_tokens + completion_tokens) / 2", 7),
        ("max(prompt_tokens, completion_tokens) - min(1, 2)", 7),
        ("math.ceil(completion_tokens / 2)", 3),
        ("floor(completion_tokens / 2)", 2),
        ("abs(0 - prompt_tokens)", 8),
        ("unknown_field + 1", 1),
        ("completion_tokens - 100", 0),
        ("-prompt_tokens + 10", 2),
    ])
    func evaluates(text: String, expected: Int) throws {
        let usage: JSONValue = ["prompt_tokens": 8, "completion_tokens": 5]
        #expect(try CostExpression(text).cost(usage) == expected)
    }

    @Test(arguments: ["os.execute('x')", "1 +", "foo(1)", "(1", "a ^ b", ""])
    func rejectsAnythingElse(text: String) {
        #expect(throws: CostExpression.ParseError.self) { try CostExpression(text) }
    }
}

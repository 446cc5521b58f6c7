import Testing

@testable import SwitchboardCore

@Suite struct ErrorClassTests {
    func classify(_ status: Int, _ body: String) -> ErrorClass {
        ErrorClass.classify(status: status, body: Array(body.utf8))
    }

    @Test func statusesWithoutBodies() {
        #expect(classify(429, "") == .rateLimited)
        for status in [500, 502, 503, 504, 529, 408] { #expect(classify(status, "") == .server) }
        #expect(classify(404, "not found") == .clientError)
        #expect(
            classify(401, #"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#)
                == .clientError)
    }

    @Test(arguments: [
        // OpenAI
        #"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
        // Anthropic
        #"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}"#,
        // DeepSeek
        #"{"error":{"message":"This model's maximum context length is 65536 tokens. However, you requested 70000 tokens.","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}"#,
        // Generic (vLLM-style) and plain text
        #"{"object":"error","message":"The prompt is longer than the model's context length","code":400}"#,
        "input is too long for the context window",
    ])
    func contextLength(body: String) {
        #expect(classify(400, body) == .contextLength)
    }

    @Test(arguments: [
        #"{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","code":"content_policy_violation"}}"#,
        #"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation"}}}"#,
    ])
    func contentFiltered(body: String) {
        #expect(classify(400, body) == .contentFiltered)
    }

    @Test func retryableAndTimeoutSets() {
        #expect(ErrorClass.allCases.filter(\.isRetryable) == [.rateLimited, .server, .transport])
        #expect(!ErrorClass.contextLength.isRetryable && !ErrorClass.headerTimeout.isRetryable)
        #expect(ErrorClass.idleTimeout.isInstanceFailure && !ErrorClass.clientError.isInstanceFailure)
    }
}

@Suite struct RetryBudgetTests {
    func policy(_ perInstance: Int, backoff: Int = 500, jitter: Bool = false) -> RetryPolicy {
        RetryPolicy(["per_instance": .int(perInstance), "backoff_ms": .int(backoff), "jitter": .bool(jitter)])
    }

    @Test func exponentialBackoffCappedAndJittered() {
        let plain = policy(3)
        #expect((1...5).map { plain.backoff(retry: $0, unit: 0.5) } == [500, 1000, 2000, 4000, 5000])
        let jittered = policy(3, jitter: true)
        #expect(jittered.backoff(retry: 2, unit: 0) == 500)
        #expect(jittered.backoff(retry: 2, unit: 0.999) == 999)
    }

    @Test func perInstancePlusOneAttemptsPerRequest() {
        var budget = RetryBudget(policy: policy(2))
        budget.recordAttempt(instance: 0, atMs: 0)
        #expect(
            budget.decide(instance: 0, errorClass: .server, retryAfterMs: nil, nowMs: 10, remainingMs: 60000, unit: 0)
                == .retry(afterMs: 500))
        budget.recordAttempt(instance: 0, atMs: 510)
        #expect(
            budget.decide(instance: 0, errorClass: .server, retryAfterMs: nil, nowMs: 520, remainingMs: 60000, unit: 0)
                == .retry(afterMs: 1000))
        budget.recordAttempt(instance: 0, atMs: 1520)
        guard
            case .moveOn = budget.decide(
                instance: 0, errorClass: .server, retryAfterMs: nil, nowMs: 1530, remainingMs: 60000, unit: 0)
        else {
            Issue.record("a third retry was allowed")
            return
        }
    }

    @Test func retryAfterIsAFloorAndTooLongMovesOn() {
        var budget = RetryBudget(policy: policy(2))
        budget.recordAttempt(instance: 1, atMs: 0)
        #expect(
            budget.decide(
                instance: 1, errorClass: .rateLimited, retryAfterMs: 2000, nowMs: 5, remainingMs: 60000, unit: 0)
                == .retry(afterMs: 2000))
        guard
            case .moveOn = budget.decide(
                instance: 1, errorClass: .rateLimited, retryAfterMs: 31000, nowMs: 5, remainingMs: 60000, unit: 0)
        else {
            Issue.record("a Retry-After over max_retry_after_ms was waited for")
            return
        }
        // A wait longer than the request's remaining budget falls over instead.
        guard
            case .moveOn = budget.decide(
                instance: 1, errorClass: .rateLimited, retryAfterMs: 2000, nowMs: 5, remainingMs: 1500, unit: 0)
        else {
            Issue.record("a retry past the request budget was allowed")
            return
        }
    }

    @Test func neverMoreThanFourAttemptsInThreeSeconds() {
        var budget = RetryBudget(policy: policy(10, backoff: 0))
        for t in [0, 10, 20, 30] { budget.recordAttempt(instance: 0, atMs: t) }
        // The fifth attempt waits until 3 s after the first of the last four.
        #expect(
            budget.decide(
                instance: 0, errorClass: .transport, retryAfterMs: nil, nowMs: 40, remainingMs: 60000, unit: 0)
                == .retry(afterMs: 2960))
    }

    @Test func nonRetryableClassesMoveOn() {
        let budget = RetryBudget(policy: policy(3))
        for errorClass in [
            ErrorClass.headerTimeout, .firstTokenTimeout, .idleTimeout, .contextLength, .contentFiltered, .clientError,
        ] {
            guard
                case .moveOn = budget.decide(
                    instance: 0, errorClass: errorClass, retryAfterMs: nil, nowMs: 0, remainingMs: 60000, unit: 0)
            else {
                Issue.record("\(errorClass) was retried")
                continue
            }
        }
    }
}

@Suite struct CircuitBreakerTests {
    @Test func opensAfterConsecutiveFailuresHalfOpensAndClosesOnSuccess() {
        var breaker = CircuitBreaker(policy: BreakerPolicy(failures: 3, openMs: 1000))
        var steps: [Bool] = []
        steps.append(breaker.failed(nowMs: 0))
        steps.append(breaker.succeeded())  // resets the count
        steps.append(breaker.failed(nowMs: 1))
        steps.append(breaker.failed(nowMs: 2))
        steps.append(breaker.failed(nowMs: 3))  // opens
        #expect(steps == [false, false, false, false, true])
        #expect(breaker.name == "open")
        var admits: [Bool] = []
        admits.append(breaker.admit(nowMs: 500))
        admits.append(breaker.admit(nowMs: 1003))  // the one trial
        let halfOpen = breaker.name
        admits.append(breaker.admit(nowMs: 1004))
        #expect(admits == [false, true, false] && halfOpen == "half_open")
        let closed = breaker.succeeded()
        let admitted = breaker.admit(nowMs: 1005)
        #expect(closed && admitted && breaker.name == "closed")
    }

    @Test func aFailedTrialReopens() {
        var breaker = CircuitBreaker(policy: BreakerPolicy(failures: 1, openMs: 100))
        var steps: [Bool] = []
        steps.append(breaker.failed(nowMs: 0))
        steps.append(breaker.admit(nowMs: 100))
        steps.append(breaker.failed(nowMs: 150))
        steps.append(breaker.admit(nowMs: 200))
        steps.append(breaker.admit(nowMs: 250))
        #expect(steps == [true, true, true, false, true])
        #expect(breaker.opened == 2)
    }

    @Test func aTrialThatNeverReportsExpires() {
        var breaker = CircuitBreaker(policy: BreakerPolicy(failures: 1, openMs: 100))
        var steps: [Bool] = []
        steps.append(breaker.failed(nowMs: 0))
        steps.append(breaker.admit(nowMs: 100))  // a trial whose request is then dropped
        steps.append(breaker.admit(nowMs: 150))
        steps.append(breaker.admit(nowMs: 200))  // open_ms later, another trial may go
        #expect(steps == [true, true, false, true])
    }
}

import Synchronization

/// One operation against its time limit: whichever ends first — the operation, the limit, or the
/// caller's cancellation — resumes the caller, once, and the caller is not kept waiting for the
/// others (a task group would wait for an operation that ignores its cancellation).
///
/// By default an operation that loses is cancelled. With `whenLate`, it is left to finish and
/// its result is handed over: an operation that may have had an effect (a reservation) is then
/// undone when it turns out that it did.
public final class BoundedRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var work: Task<Void, Never>?
        var timer: Task<Void, Never>?
        var cancelled = false
    }

    private let state = Mutex(State())
    private let whenLate: (@Sendable (Result<T, any Error>) -> Void)?

    private init(whenLate: (@Sendable (Result<T, any Error>) -> Void)?) {
        self.whenLate = whenLate
    }

    /// `operation`'s result, or `timeout` (thrown) when it has not finished within `limit`.
    public static func run(
        limit: Duration, timeout: @autoclosure @escaping @Sendable () -> any Error,
        _ operation: @escaping @Sendable () async throws -> T,
        whenLate: (@Sendable (Result<T, any Error>) -> Void)? = nil
    ) async throws -> T {
        let race = BoundedRace(whenLate: whenLate)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                race.start(continuation, limit: limit, timeout: timeout, operation)
            }
        } onCancel: {
            _ = race.finish(.failure(CancellationError()), byOperation: false)
        }
    }

    private func start(
        _ continuation: CheckedContinuation<T, any Error>, limit: Duration,
        timeout: @escaping @Sendable () -> any Error,
        _ operation: @escaping @Sendable () async throws -> T
    ) {
        let proceed = state.withLock { state -> Bool in
            guard !state.cancelled else { return false }
            state.continuation = continuation
            return true
        }
        guard proceed else {
            continuation.resume(throwing: CancellationError())
            return
        }
        let work = Task {
            let result: Result<T, any Error>
            do {
                result = .success(try await operation())
            } catch {
                result = .failure(error)
            }
            if !self.finish(result, byOperation: true) { self.whenLate?(result) }
        }
        let timer = Task {
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            _ = self.finish(.failure(timeout()), byOperation: false)
        }
        let finished = state.withLock { state -> Bool in
            guard state.continuation != nil else { return true }
            state.work = work
            state.timer = timer
            return false
        }
        if finished {
            if whenLate == nil { work.cancel() }
            timer.cancel()
        }
    }

    /// Resumes the caller with `result` unless something else already did; whether it did.
    private func finish(_ result: Result<T, any Error>, byOperation: Bool) -> Bool {
        let (continuation, work, timer) = state.withLock { state in
            state.cancelled = true
            defer {
                state.continuation = nil
                state.work = nil
                state.timer = nil
            }
            return (state.continuation, state.work, state.timer)
        }
        guard let continuation else { return false }
        if !byOperation, whenLate == nil { work?.cancel() }
        timer?.cancel()
        continuation.resume(with: result)
        return true
    }
}

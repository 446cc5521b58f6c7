import Synchronization

/// One store operation against its time limit (see `PostgresConfigStore.bounded`): whichever
/// ends first — the operation, the limit, or the caller's cancellation — resumes the caller,
/// once; the others are cancelled and not waited for.
final class BoundedRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var work: Task<Void, Never>?
        var timer: Task<Void, Never>?
        var cancelled = false
    }

    private let state = Mutex(State())

    func start(
        _ continuation: CheckedContinuation<T, any Error>, limit: Duration,
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
            do {
                self.finish(.success(try await operation()))
            } catch {
                self.finish(.failure(error))
            }
        }
        let timer = Task {
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            self.finish(.failure(StoreUnavailable("no answer within \(limit)")))
        }
        let finished = state.withLock { state -> Bool in
            guard state.continuation != nil else { return true }
            state.work = work
            state.timer = timer
            return false
        }
        if finished {
            work.cancel()
            timer.cancel()
        }
    }

    /// Resumes the caller with `result` unless something else already did.
    func finish(_ result: Result<T, any Error>) {
        let (continuation, work, timer) = state.withLock { state in
            state.cancelled = true
            defer {
                state.continuation = nil
                state.work = nil
                state.timer = nil
            }
            return (state.continuation, state.work, state.timer)
        }
        guard let continuation else { return }
        work?.cancel()
        timer?.cancel()
        continuation.resume(with: result)
    }
}

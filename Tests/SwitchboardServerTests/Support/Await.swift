import Foundation

/// A wait for an event that did not come.
struct TimedOut: Error {}

/// Runs `operation`, failing (instead of hanging the suite) if it takes longer than `seconds`.
func within<T: Sendable>(_ seconds: Int, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        defer { group.cancelAll() }
        guard let value = try await group.next() ?? nil else { throw TimedOut() }
        return value
    }
}

/// The first element of `stream`, or ``TimedOut`` after `timeout`.
func first<T: Sendable>(of stream: AsyncStream<T>, within timeout: Duration) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            var iterator = stream.makeAsyncIterator()
            return await iterator.next()
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let value = try await group.next() ?? nil else { throw TimedOut() }
        return value
    }
}

/// Polls `condition` until it holds or `timeout` passes; for changes that have no event to
/// await (a file edited on disk is noticed by the gateway's poller, a gauge read over HTTP).
func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// Runs a blocking call (`waitpid`, a blocking `read`) on a thread of its own: blocking one of
/// the two threads of the concurrency pool would starve every other test running beside it.
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

import NIOCore
import Synchronization

/// Tells a streaming response that its client went away, without taking over the connection.
/// (Hummingbird's `consumeWithCancellationOnInboundClose` reads the connection's inbound side
/// itself, so the connection could not be reused: every stream cost a new TCP connection.) One
/// watch per connection, registered once on its close future and dropped when it closes, so
/// many streams on one keep-alive connection do not pile up callbacks.
final class ConnectionWatch: Sendable {
    private struct State {
        var closed = false
        var next = 0
        var waiters: [Int: @Sendable () -> Void] = [:]
    }

    private let state = Mutex(State())

    private static let watches = Mutex<[ObjectIdentifier: ConnectionWatch]>([:])

    /// The watch of `channel`'s connection.
    static func of(_ channel: any Channel) -> ConnectionWatch {
        let key = ObjectIdentifier(channel)
        let (watch, isNew) = watches.withLock { watches in
            if let existing = watches[key] { return (existing, false) }
            let made = ConnectionWatch()
            watches[key] = made
            return (made, true)
        }
        if isNew {
            channel.closeFuture.whenComplete { _ in
                watches.withLock { $0[key] = nil }
                watch.fire()
            }
        }
        return watch
    }

    /// Connections being watched (for tests: the registry must not grow).
    static var count: Int { watches.withLock { $0.count } }

    /// Calls `handler` once when the connection closes (at once if it already has); the
    /// returned token removes it.
    func onClose(_ handler: @escaping @Sendable () -> Void) -> Int? {
        let token: Int? = state.withLock { state in
            if state.closed { return nil }
            state.next += 1
            state.waiters[state.next] = handler
            return state.next
        }
        if token == nil { handler() }
        return token
    }

    func remove(_ token: Int?) {
        guard let token else { return }
        _ = state.withLock { $0.waiters.removeValue(forKey: token) }
    }

    private func fire() {
        let waiters = state.withLock { state in
            state.closed = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter() }
    }

    /// Runs `operation`, cancelling it if `watch`'s connection closes first (the client left).
    static func cancellingOnClose<T: Sendable>(_ watch: ConnectionWatch?, _ operation: () async throws -> T)
        async throws -> T
    {
        guard let watch else { return try await operation() }
        return try await withoutActuallyEscaping(operation) { operation in
            let (closed, signal) = AsyncStream<Void>.makeStream()
            let token = watch.onClose { signal.finish() }
            defer {
                watch.remove(token)
                signal.finish()
            }
            let unsafe = UnsafeTransfer(operation)
            return try await withThrowingTaskGroup(of: T?.self) { group in
                // Ends when the connection closes, or when cancelled after the operation ended.
                group.addTask {
                    for await _ in closed {}
                    return nil
                }
                // Runs in a child task so it can be cancelled; the group awaits it before
                // returning, so the non-escaping closure does not outlive this call.
                group.addTask { try await unsafe.value() }
                defer { group.cancelAll() }
                while let result = try await group.next() {
                    if let value = result { return value }
                    throw CancellationError()
                }
                throw CancellationError()
            }
        }
    }
}

/// Moves a value into a child task that the caller awaits before the value's scope ends.
private struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

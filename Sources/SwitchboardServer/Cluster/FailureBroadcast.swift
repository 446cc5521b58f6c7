import SwitchboardStore

/// Carries what this node learns about failing instances (a 429 cooldown, a breaker that
/// opened) to the cluster without slowing the request that learned it: the request only yields
/// to a stream; a background service (``FailureSharingService``) publishes through the store.
/// On a single node nobody drains it and nothing is kept.
final class FailureBroadcast: Sendable {
    let failures: AsyncStream<SharedFailure>
    private let continuation: AsyncStream<SharedFailure>.Continuation

    init() {
        // Bounded: a database that is slow or down must not make failures pile up in memory.
        (failures, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(256))
    }

    func send(_ failure: SharedFailure) {
        continuation.yield(failure)
    }
}

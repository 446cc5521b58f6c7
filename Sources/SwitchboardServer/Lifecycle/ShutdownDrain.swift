import Synchronization

/// The gateway's shutdown, as the data plane sees it. On SIGTERM/SIGINT the gateway starts
/// draining: `/v1/ready` answers 503, the listeners stop accepting, and requests and streams
/// already running go on. At the deadline (`shutdown.drain_timeout_ms` later) ``deadline``
/// fires: streams still open end with an in-band `"code":"shutdown"` error (no `[DONE]`),
/// requests still waiting for their upstream are answered 503, and the process exits 0.
public final class ShutdownDrain: Sendable {
    private let started = Atomic(false)
    /// Fires once, at the drain's deadline: what waits on it is cancelled
    /// (``ConnectionWatch/cancellingOnClose(_:_:)``) and then told why by ``deadlinePassed``.
    let deadline = ConnectionWatch()

    public init() {}

    /// Whether the gateway is shutting down (not ready any more).
    public var isDraining: Bool { started.load(ordering: .acquiring) }

    /// Whether the deadline has passed: what is still running is being ended.
    var deadlinePassed: Bool { deadline.isClosed }

    /// Starts draining; `true` the first time only.
    @discardableResult
    func begin() -> Bool {
        !started.exchange(true, ordering: .acquiringAndReleasing)
    }

    /// Ends what still runs (see the type's comment).
    func expire() {
        deadline.fire()
    }
}

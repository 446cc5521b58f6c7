import Foundation
import Logging
import ServiceLifecycle
import SwitchboardStore

/// Registers this node in a cluster's store and heartbeats every `interval`, with the
/// configuration revision it has applied; leaves on a clean shutdown. A node that stops
/// heartbeating (killed, cut off) drops out of `GET /v1/cluster` after three intervals.
struct ClusterHeartbeat: Service {
    let membership: any ClusterMembership
    let node: ClusterNode
    let revision: @Sendable () -> Int64
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var failing = false
            while !Task.isCancelledOrShuttingDown {
                var beat = node
                beat.revision = revision()
                do {
                    try await membership.heartbeat(beat)
                    failing = false
                } catch {
                    // The store's watch logs the outage itself; one line here is enough.
                    if !failing { logger.warning("cluster heartbeat of node \(node.id) failed: \(error)") }
                    failing = true
                }
                try? await Task.sleep(for: interval)
            }
        }
        try? await membership.leave(node.id)
    }
}

extension Task where Success == Never, Failure == Never {
    /// Cancelled, or the service group is shutting down.
    static var isCancelledOrShuttingDown: Bool { isCancelled || isShuttingDownGracefully }
}

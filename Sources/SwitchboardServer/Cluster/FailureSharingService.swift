import Logging
import ServiceLifecycle
import SwitchboardStore

/// Publishes this node's failure knowledge to the cluster and applies the other nodes' to the
/// local health registry, so that the cluster stops sending to a rate-limited or broken
/// provider together instead of each node finding out on its own.
struct FailureSharingService: Service {
    let sharing: any FailureSharing
    let broadcast: FailureBroadcast
    let node: String
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var failing = false
            for await failure in broadcast.failures {
                do {
                    try await sharing.publish(failure, from: node)
                    failing = false
                } catch {
                    if !failing {
                        logger.warning("could not share a failure of \(failure.key) with the cluster: \(error)")
                    }
                    failing = true
                }
            }
        }
    }
}

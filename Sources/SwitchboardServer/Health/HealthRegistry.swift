import Logging
import SwitchboardCore
import SwitchboardStore
import Synchronization

/// Every instance's health by identity (`/apisix/routes/1#instances[0]`), and the active
/// checkers. Each configuration compile is a generation: handlers declare the instances they
/// use; committing the generation starts checkers for new instances at once (not on the first
/// request, unlike APISIX) and stops the checkers of instances no longer configured, so a
/// configuration change never leaks a checker. Health carries over when an instance's
/// endpoint and checks are unchanged.
public final class HealthRegistry: Sendable {
    struct Entry {
        var health: InstanceHealth
        var signature: String
        var generation: Int
        var checker: Task<Void, Never>?
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let generation = Mutex(0)
    private let runsCheckers: Bool
    private let clients: UpstreamClients
    private let logger: Logger
    /// Cooldowns and breaker openings for the other nodes of a cluster.
    let broadcast = FailureBroadcast()

    /// - Parameter runsCheckers: `false` where configuration is only validated.
    public init(clients: UpstreamClients, logger: Logger, runsCheckers: Bool = true) {
        self.clients = clients
        self.logger = logger
        self.runsCheckers = runsCheckers
    }

    /// Starts a new generation; handlers compiled until `commit` declare into it.
    public func beginGeneration() -> Int {
        generation.withLock {
            $0 += 1
            return $0
        }
    }

    private var currentGeneration: Int { generation.withLock { $0 } }

    /// The health object for an instance: the existing one when nothing about it changed.
    func declare(
        key: String, routeID: String?, instance: String, host: String, port: Int, scheme: String,
        config: HealthCheckConfig?, breaker: BreakerPolicy? = nil
    ) -> InstanceHealth {
        let signature =
            "\(instance)|\(scheme)://\(host):\(port)|\(String(describing: config))|\(String(describing: breaker))"
        let generation = currentGeneration
        return entries.withLock { entries in
            if var entry = entries[key], entry.signature == signature {
                entry.generation = generation
                entries[key] = entry
                return entry.health
            }
            entries[key]?.checker?.cancel()
            let health = InstanceHealth(
                key: key, routeID: routeID, instance: instance, host: host, port: port, scheme: scheme,
                config: config, breaker: breaker, logger: logger, broadcast: broadcast)
            entries[key] = Entry(health: health, signature: signature, generation: generation, checker: nil)
            return health
        }
    }

    /// Applies a failure another node of the cluster saw to the instance with that identity.
    func applyShared(_ failure: SharedFailure) {
        let health = entries.withLock { $0[failure.key]?.health }
        health?.applyShared(failure)
    }

    /// Drops instances the generation did not declare (stopping their checkers) and starts
    /// checkers for declared instances with active checks.
    public func commit(_ generation: Int) {
        entries.withLock { entries in
            for (key, entry) in entries where entry.generation < generation {
                entry.checker?.cancel()
                entries[key] = nil
            }
            guard runsCheckers else { return }
            for (key, entry) in entries where entry.checker == nil && entry.health.activeChecked {
                let checker = ActiveChecker(health: entry.health, clients: clients)
                entries[key]?.checker = Task { await checker.run() }
            }
        }
    }

    /// Instances with checks, for the control API.
    public func checked() -> [InstanceHealth] {
        entries.withLock { entries in entries.values.map(\.health).filter(\.isChecked) }.sorted { $0.key < $1.key }
    }

    /// Every instance (checked or not).
    public func all() -> [InstanceHealth] {
        entries.withLock { entries in entries.values.map(\.health) }
    }

    /// Number of running active checkers.
    public var runningCheckers: Int {
        entries.withLock { entries in entries.values.filter { $0.checker != nil }.count }
    }

    public func shutdown() {
        entries.withLock { entries in
            for entry in entries.values { entry.checker?.cancel() }
            entries = [:]
        }
    }
}

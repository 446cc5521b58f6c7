import Logging
import NIOSSL
import PostgresNIO
import SwitchboardCore
import Synchronization

/// The cluster store: every gateway node keeps its configuration in one PostgreSQL database.
///
/// Each write is one transaction that bumps a single-row revision (the row lock orders writers
/// of all nodes, so revisions increase in commit order) and sends `NOTIFY switchboard_config`.
/// Every node listens; a notification, or a catch-up tick (`catchUpInterval`) for a lost one or
/// a reconnect, makes it compare the database's revision with the one it last loaded and reload
/// when they differ.
public final class PostgresConfigStore: ConfigStore {
    public let isWritable = true
    /// The DSN without its password: this is what logs and errors show.
    public let location: String
    let client: PostgresClient
    private let runner: Task<Void, Never>
    let logger: Logger
    private let catchUpInterval: Duration
    /// The revision whose content this node has applied (own writes included when nothing
    /// from another node came in between); `-1` before the first load.
    private let applied = Mutex<Int64>(-1)
    /// Set by the watch while the database cannot be reached.
    private let unreachable = Mutex(false)

    public var isStale: Bool { unreachable.withLock { $0 } }

    static let channel = "switchboard_config"
    static let failureChannel = "switchboard_failures"
    /// Receives failures other nodes published.
    private let failureHandler = Mutex<(@Sendable (SharedFailure) -> Void)?>(nil)
    /// This node's id in failure notifications, so it skips its own.
    private let nodeID = Mutex("")
    /// `pg_advisory_xact_lock` key for migrations: nodes starting together migrate one at a time.
    static let migrationLock: Int64 = 0x5357_4254_4348  // "SWBTCH"

    private init(
        location: String, client: PostgresClient, runner: Task<Void, Never>, logger: Logger, catchUpInterval: Duration
    ) {
        self.location = location
        self.client = client
        self.runner = runner
        self.logger = logger
        self.catchUpInterval = catchUpInterval
    }

    /// Connects and migrates the schema. A database that is not reachable yet is retried (with
    /// backoff, logged once) until it is, or until `startupTimeout` when one is given: a node
    /// must not start with an empty configuration because PostgreSQL was slower to come up.
    public static func open(
        _ dsn: PostgresDSN, logger: Logger, catchUpInterval: Duration = .seconds(5),
        startupTimeout: Duration? = nil
    ) async throws -> PostgresConfigStore {
        var configuration = PostgresClient.Configuration(
            host: dsn.host, port: dsn.port, username: dsn.user, password: dsn.password, database: dsn.database,
            tls: tls(dsn.sslMode))
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.maximumConnections = 8
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .error)
        let client = PostgresClient(configuration: configuration, backgroundLogger: quiet)
        let runner = Task { await client.run() }
        let store = PostgresConfigStore(
            location: dsn.redacted, client: client, runner: runner, logger: logger, catchUpInterval: catchUpInterval)
        let deadline = startupTimeout.map { ContinuousClock.now + $0 }
        var delay = Duration.milliseconds(200)
        var warned = false
        while true {
            do {
                let left = deadline.map { ContinuousClock.now.duration(to: $0) } ?? operationTimeout
                let remaining = max(.milliseconds(100), min(operationTimeout, left))
                try await bounded(remaining) { try await store.migrate() }
                if warned { logger.notice("store \(dsn.redacted) is reachable; starting") }
                return store
            } catch {
                let reason = PostgresConfigStore.describe(error)
                if let deadline, ContinuousClock.now + delay > deadline {
                    runner.cancel()
                    throw StoreError("cannot open store \(dsn.redacted): \(reason)")
                }
                if Task.isCancelled {
                    runner.cancel()
                    throw StoreError("cannot open store \(dsn.redacted): \(reason)")
                }
                if !warned {
                    logger.warning("store \(dsn.redacted) is not reachable (\(reason)); retrying until it is")
                    warned = true
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    private static func tls(_ mode: PostgresDSN.SSLMode) -> PostgresClient.Configuration.TLS {
        switch mode {
        case .disable: return .disable
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return .require(configuration)
        case .verifyFull: return .require(.makeClientConfiguration())
        }
    }

    /// The error under a transaction's wrapper.
    static func rootCause(_ error: any Error) -> any Error {
        guard let wrapped = error as? PostgresTransactionError else { return error }
        return wrapped.beginError ?? wrapped.closureError ?? wrapped.commitError ?? error
    }

    /// What went wrong, in one line, without connection details (`PSQLError`'s own description
    /// is deliberately vague; its server message or code is what tells).
    static func describe(_ error: any Error) -> String {
        if let error = rootCause(error) as? PSQLError {
            if let message = error.serverInfo?[.message] { return message }
            return "\(error.code)"
        }
        return "\(error)"
    }

    /// How long one store operation may wait for the database before it counts as unavailable:
    /// the pool keeps retrying a server that is down, and a request for a connection would
    /// otherwise wait for it.
    static let operationTimeout: Duration = .seconds(5)

    /// Runs `operation`, or throws ``StoreUnavailable`` when it has not finished within `limit`.
    /// The caller gets its answer at the limit even when the operation does not notice that it
    /// was cancelled (a query waiting for a pooled connection or for the server may not): a task
    /// group would wait for it, and a stuck query would stall its caller as long as it lasts.
    static func bounded<T: Sendable>(
        _ limit: Duration = operationTimeout, _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await BoundedRace.run(limit: limit, timeout: StoreUnavailable("no answer within \(limit)"), operation)
    }

    // MARK: - Schema

    /// Versioned migrations, each applied once, under an advisory lock held for the transaction.
    static let migrations: [[PostgresQuery]] = [
        [
            """
            CREATE TABLE switchboard_resources (
                kind TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL,
                created_index BIGINT NOT NULL, modified_index BIGINT NOT NULL, revision BIGINT NOT NULL,
                PRIMARY KEY (kind, id))
            """,
            "CREATE TABLE switchboard_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """
            CREATE TABLE switchboard_revision (
                single BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (single), revision BIGINT NOT NULL)
            """,
            "INSERT INTO switchboard_revision (single, revision) VALUES (TRUE, 0)",
            "CREATE SEQUENCE switchboard_ids",
        ],
        [
            """
            CREATE TABLE switchboard_nodes (
                id TEXT PRIMARY KEY, address TEXT NOT NULL, version TEXT NOT NULL,
                started_at DOUBLE PRECISION NOT NULL, heartbeat_at TIMESTAMPTZ NOT NULL, revision BIGINT NOT NULL)
            """
        ],
        [
            """
            CREATE TABLE switchboard_failures (
                key TEXT NOT NULL, kind TEXT NOT NULL, until TIMESTAMPTZ NOT NULL, PRIMARY KEY (key, kind))
            """
        ],
        quotaMigration,
        batchMigration,
    ]

    private func migrate() async throws {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLock))", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS switchboard_migrations (
                    version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """, logger: logger)
            var current = 0
            for try await version in try await connection.query(
                "SELECT COALESCE(max(version), 0) FROM switchboard_migrations", logger: logger
            ).decode(Int.self) {
                current = version
            }
            for (index, statements) in Self.migrations.enumerated() where index + 1 > current {
                for statement in statements { try await connection.query(statement, logger: logger) }
                let version = index + 1
                try await connection.query(
                    "INSERT INTO switchboard_migrations (version) VALUES (\(version))", logger: logger)
                logger.info("store \(location): schema migrated to version \(version)")
            }
        }
    }

    // MARK: - ConfigStore

    public func loadAll() async throws -> [StoredResource] {
        let (records, revision) = try await Self.bounded { try await self.loadWithRevision() }
        applied.withLock { $0 = revision }
        return records
    }

    /// Every resource and the revision they are at, read from one snapshot.
    private func loadWithRevision() async throws -> ([StoredResource], Int64) {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", logger: logger)
            var revision: Int64 = 0
            for try await value in try await connection.query(
                "SELECT revision FROM switchboard_revision", logger: logger
            ).decode(Int64.self) {
                revision = value
            }
            var records: [StoredResource] = []
            let rows = try await connection.query(
                "SELECT kind, id, value, created_index, modified_index FROM switchboard_resources ORDER BY created_index, kind, id",
                logger: logger)
            for try await (kindText, id, text, created, modified) in rows.decode(
                (String, String, String, Int64, Int64).self)
            {
                if let record = StoredResource.fromRow(
                    kind: kindText, id: id, text: text, created: Int(created), modified: Int(modified),
                    location: location, logger: logger)
                {
                    records.append(record)
                }
            }
            return (records, revision)
        }
    }

    public func latest() async throws -> [StoredResource]? {
        let (records, revision) = try await Self.bounded { try await self.loadWithRevision() }
        applied.withLock { $0 = revision }
        return records
    }

    /// The database's current revision (one cheap row).
    private func currentRevision() async throws -> Int64 {
        var revision: Int64 = 0
        for try await value in try await client.query("SELECT revision FROM switchboard_revision", logger: logger)
            .decode(Int64.self)
        {
            revision = value
        }
        return revision
    }

    public func apply(_ changes: [StoreChange]) async throws {
        do {
            try await Self.bounded { try await self.write(changes) }
        } catch let error as StoreUnavailable {
            throw error
        } catch  where Self.rootCause(error) is StoreConflict {
            throw StoreConflict()
        } catch {
            // The server is down, unreachable or refuses connections: the transaction was rolled
            // back. (A commit whose answer was lost is the one case where that is not sure; the
            // catch-up then shows what the database holds.)
            throw StoreUnavailable(Self.describe(error))
        }
    }

    private func write(_ changes: [StoreChange]) async throws {
        let revision: Int64 = try await client.withTransaction(logger: logger) { connection in
            var revision: Int64 = 0
            for try await value in try await connection.query(
                "UPDATE switchboard_revision SET revision = revision + 1 RETURNING revision", logger: logger
            ).decode(Int64.self) {
                revision = value
            }
            // The row lock orders every node's writes; a node that has not applied the writes
            // before this one validated against an older configuration (a route may now use
            // the upstream it deletes): nothing is written, and it validates again.
            guard revision - 1 == self.applied.withLock({ $0 }) else { throw StoreConflict() }
            for change in changes {
                switch change {
                case .put(let record):
                    let kind = record.kind.rawValue
                    let id = record.id
                    let text = record.value.serialized()
                    let created = Int64(record.createdIndex)
                    let modified = Int64(record.modifiedIndex)
                    try await connection.query(
                        """
                        INSERT INTO switchboard_resources (kind, id, value, created_index, modified_index, revision)
                        VALUES (\(kind), \(id), \(text), \(created), \(modified), \(revision))
                        ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value,
                            modified_index = excluded.modified_index, revision = excluded.revision
                        """, logger: logger)
                case .delete(let kind, let id):
                    let kindText = kind.rawValue
                    try await connection.query(
                        "DELETE FROM switchboard_resources WHERE kind = \(kindText) AND id = \(id)", logger: logger)
                }
            }
            let payload = String(revision)
            try await connection.query("SELECT pg_notify(\(Self.channel), \(payload))", logger: logger)
            return revision
        }
        // This node's memory now holds the database's content at `revision` if it held the one
        // just before; otherwise another node wrote in between and the watch reloads.
        applied.withLock { if $0 == revision - 1 { $0 = revision } }
    }

    public func metadata(_ key: String) async throws -> String? {
        try await Self.bounded { try await self.readMetadata(key) }
    }

    private func readMetadata(_ key: String) async throws -> String? {
        var found: String?
        for try await value in try await client.query(
            "SELECT value FROM switchboard_meta WHERE key = \(key)", logger: logger
        ).decode(String.self) {
            found = value
        }
        return found
    }

    public func setMetadata(_ key: String, _ value: String) async throws {
        _ = try await Self.bounded {
            try await self.client.query(
                """
                INSERT INTO switchboard_meta (key, value) VALUES (\(key), \(value))
                ON CONFLICT (key) DO UPDATE SET value = excluded.value
                """, logger: self.logger)
        }
    }

    /// Stores `value` unless the key already has one (another node started first); returns the
    /// value that is stored. The generated admin key is made once for the whole cluster this way.
    public func setMetadataIfAbsent(_ key: String, _ value: String) async throws -> String {
        _ = try await Self.bounded {
            try await self.client.query(
                "INSERT INTO switchboard_meta (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO NOTHING",
                logger: self.logger)
        }
        return try await metadata(key) ?? value
    }

    /// A number no other node gets: the ids of `POST`ed objects.
    public func allocateID() async throws -> Int? {
        do {
            return try await Self.bounded {
                var id: Int64 = 0
                for try await value in try await self.client.query(
                    "SELECT nextval('switchboard_ids')", logger: self.logger
                ).decode(Int64.self) {
                    id = value
                }
                return Int(id)
            }
        } catch {
            throw StoreUnavailable(Self.describe(error))
        }
    }

    public func watch(
        _ onChange: @escaping @Sendable ([StoredResource]) async -> Void,
        onFailure: @escaping @Sendable (any Error) async -> Void
    ) async throws {
        var down: ContinuousClock.Instant?
        var delay = Duration.milliseconds(200)
        while !Task.isCancelled {
            do {
                // A probe with a deadline first: leasing a connection would wait for a server
                // that is down instead of failing.
                _ = try await Self.bounded { try await self.currentRevision() }
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.failureChannel) { failures in
                        try await connection.listen(on: Self.channel) { notifications in
                            if let since = down {
                                logger.notice("store \(location) is reachable again after \(since.duration(to: .now))")
                                down = nil
                            }
                            self.unreachable.withLock { $0 = false }
                            delay = .milliseconds(200)
                            try await self.follow(notifications, failures, onChange)
                        }
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                unreachable.withLock { $0 = true }
                if down == nil {
                    down = .now
                    logger.error(
                        "store \(location) is unreachable (\(Self.describe(error))); serving the last configuration")
                }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    /// Reloads on every notification and catch-up tick until the listening connection fails.
    private func follow(
        _ notifications: PostgresNotificationSequence, _ failures: PostgresNotificationSequence,
        _ onChange: @escaping @Sendable ([StoredResource]) async -> Void
    ) async throws {
        let (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        wake.yield()  // catch up with what changed while this node was not listening
        try await catchUpFailures()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await failure in failures { self.received(failure.payload) }
                throw StoreError("the notification connection closed")
            }
            group.addTask {
                for try await _ in notifications { wake.yield() }
                throw StoreError("the notification connection closed")
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: self.catchUpInterval)
                    wake.yield()
                }
            }
            group.addTask {
                for await _ in wakes { try await self.catchUp(onChange) }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Tells the node to reload when the database moved past what it applied. The node reads
    /// the content itself (``latest()``) while it holds its write lock, so a reload can never
    /// put back an older configuration over one of its own writes.
    private func catchUp(_ onChange: @escaping @Sendable ([StoredResource]) async -> Void) async throws {
        let latest = try await Self.bounded { try await self.currentRevision() }
        guard latest != applied.withLock({ $0 }) else { return }
        await onChange([])
    }

    /// The revision this node has applied (`-1` before the first load).
    public var appliedRevision: Int64 { applied.withLock { $0 } }

    public func close() async throws {
        runner.cancel()
        _ = await runner.value
    }
}

extension PostgresConfigStore: ClusterMembership {
    public func heartbeat(_ node: ClusterNode) async throws {
        _ = try await Self.bounded {
            try await self.client.query(
                """
                INSERT INTO switchboard_nodes (id, address, version, started_at, heartbeat_at, revision)
                VALUES (\(node.id), \(node.address), \(node.version), \(node.startedAt), now(), \(node.revision))
                ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), revision = excluded.revision,
                    address = excluded.address
                """, logger: self.logger)
        }
    }

    public func leave(_ id: String) async throws {
        _ = try await Self.bounded {
            try await self.client.query("DELETE FROM switchboard_nodes WHERE id = \(id)", logger: self.logger)
        }
    }

    public func members(within window: Double) async throws -> (nodes: [ClusterNode], revision: Int64) {
        try await Self.bounded {
            // The database's clock decides who is alive: nodes' clocks may disagree.
            try await self.client.query(
                "DELETE FROM switchboard_nodes WHERE heartbeat_at < now() - make_interval(secs => \(window * 10))",
                logger: self.logger)
            var nodes: [ClusterNode] = []
            let rows = try await self.client.query(
                """
                SELECT id, address, version, started_at, extract(epoch FROM heartbeat_at)::float8, revision
                FROM switchboard_nodes WHERE heartbeat_at >= now() - make_interval(secs => \(window))
                ORDER BY started_at, id
                """, logger: self.logger)
            for try await (id, address, version, started, heartbeat, revision) in rows.decode(
                (String, String, String, Double, Double, Int64).self)
            {
                nodes.append(
                    ClusterNode(
                        id: id, address: address, version: version, startedAt: started, heartbeatAt: heartbeat,
                        revision: revision))
            }
            return (nodes, try await self.currentRevision())
        }
    }
}

extension PostgresConfigStore: FailureSharing {
    public func onSharedFailure(_ handler: @escaping @Sendable (SharedFailure) -> Void) {
        failureHandler.withLock { $0 = handler }
    }

    public func publish(_ failure: SharedFailure, from node: String) async throws {
        nodeID.withLock { $0 = node }
        let kind = failure.kind.rawValue
        let payload = "\(node)|\(kind)|\(failure.seconds)|\(failure.key)"
        _ = try await Self.bounded {
            try await self.client.withTransaction(logger: self.logger) { connection in
                try await connection.query(
                    """
                    INSERT INTO switchboard_failures (key, kind, until)
                    VALUES (\(failure.key), \(kind), now() + make_interval(secs => \(failure.seconds)))
                    ON CONFLICT (key, kind) DO UPDATE SET until = greatest(switchboard_failures.until, excluded.until)
                    """, logger: self.logger)
                try await connection.query("SELECT pg_notify(\(Self.failureChannel), \(payload))", logger: self.logger)
            }
        }
    }

    /// `node|kind|seconds|key`; a node's own notifications are skipped.
    private func received(_ payload: String) {
        let parts = payload.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, let kind = SharedFailure.Kind(rawValue: String(parts[1])),
            let seconds = Double(parts[2]), seconds.isFinite, seconds > 0
        else { return }
        guard parts[0] != nodeID.withLock({ $0 }) else { return }
        failureHandler.withLock { $0 }?(SharedFailure(key: String(parts[3]), kind: kind, seconds: seconds))
    }

    /// Failures still in force, for a node that was not listening when they were published.
    private func catchUpFailures() async throws {
        guard let handler = failureHandler.withLock({ $0 }) else { return }
        let current = try await Self.bounded {
            var found: [SharedFailure] = []
            let rows = try await self.client.query(
                """
                SELECT key, kind, extract(epoch FROM until - now())::float8 FROM switchboard_failures
                WHERE until > now()
                """, logger: self.logger)
            for try await (key, kind, seconds) in rows.decode((String, String, Double).self) {
                if let kind = SharedFailure.Kind(rawValue: kind) {
                    found.append(SharedFailure(key: key, kind: kind, seconds: seconds))
                }
            }
            try await self.client.query("DELETE FROM switchboard_failures WHERE until < now()", logger: self.logger)
            return found
        }
        for failure in current { handler(failure) }
    }
}

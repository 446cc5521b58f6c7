import Logging
import SwitchboardCore

/// One change to persist; a write is a list of them applied atomically (deleting a consumer
/// deletes its credentials in the same transaction).
public enum StoreChange: Sendable, Equatable {
    case put(StoredResource)
    case delete(ResourceKind, id: String)
}

/// Where configuration lives. The gateway keeps the authoritative copy in memory
/// (``ConfigState``) and uses a store only to persist it and to hear about changes made
/// elsewhere, so a store is small: load, apply, watch. SQLite (embedded), a standalone file
/// (read-only) and later PostgreSQL (shared by a cluster) implement it.
public protocol ConfigStore: Sendable {
    /// `false` for standalone file mode: the Admin API answers writes with 405.
    var isWritable: Bool { get }
    /// A description for logs and errors, e.g. `sqlite:./switchboard.db`.
    var location: String { get }

    func loadAll() async throws -> [StoredResource]
    /// Applies all changes or none.
    func apply(_ changes: [StoreChange]) async throws
    /// Small key/value facts of the store itself (e.g. the generated admin key).
    func metadata(_ key: String) async throws -> String?
    func setMetadata(_ key: String, _ value: String) async throws
    /// Stores `value` unless `key` has one already; returns what is stored. Nodes of a cluster
    /// that start together agree on one generated admin key this way.
    func setMetadataIfAbsent(_ key: String, _ value: String) async throws -> String
    /// A number for a `POST`ed object's id that no other node of a cluster hands out; `nil`
    /// when the process is the only writer (it numbers ids itself).
    func allocateID() async throws -> Int?
    /// The store's whole content now (a node reloading, or whose write met a
    /// ``StoreConflict``); `nil` for a store whose watch hands over the content itself.
    func latest() async throws -> [StoredResource]?
    /// `true` while a shared store cannot be reached: this node answers from the configuration
    /// it last loaded, which may be behind the cluster's.
    var isStale: Bool { get }
    /// Calls `onChange` whenever the configuration was changed outside this process, with the
    /// full new content (a store with ``latest()`` may pass nothing: the caller then reads it
    /// under its own write lock), or `onFailure` when the changed content cannot be read.
    /// Returns when the task is cancelled.
    func watch(
        _ onChange: @escaping @Sendable ([StoredResource]) async -> Void,
        onFailure: @escaping @Sendable (any Error) async -> Void
    ) async throws
    func close() async throws
}

extension ConfigStore {
    /// One writer: read, then write.
    public func setMetadataIfAbsent(_ key: String, _ value: String) async throws -> String {
        if let stored = try await metadata(key) { return stored }
        try await setMetadata(key, value)
        return value
    }

    public func allocateID() async throws -> Int? { nil }

    public func latest() async throws -> [StoredResource]? { nil }

    /// A store of this process alone is never behind.
    public var isStale: Bool { false }
}

extension StoredResource {
    /// A record read back from a database row; `nil` (logged) for an unknown kind or JSON that
    /// does not parse: one unreadable record must not keep the gateway from starting with the rest.
    static func fromRow(
        kind kindText: String, id: String, text: String, created: Int, modified: Int, location: String,
        logger: Logger
    ) -> StoredResource? {
        guard let kind = ResourceKind(rawValue: kindText) else { return nil }
        do {
            let value = try JSONParser.parse(text)
            return StoredResource(kind: kind, id: id, value: value, createdIndex: created, modifiedIndex: modified)
        } catch {
            logger.error("store \(location) holds unreadable JSON for \(kindText)/\(id), skipped: \(error)")
            return nil
        }
    }
}

/// A store that cannot be used; `description` is the one line shown to the user.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The store could not be reached (a cluster's database is down): the write changed nothing
/// and can be tried again, so the Admin API answers 503.
public struct StoreUnavailable: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One gateway node of a cluster as the others see it.
public struct ClusterNode: Sendable, Equatable {
    public var id: String
    /// The node's proxy listen address(es), as configured.
    public var address: String
    public var version: String
    /// Seconds since 1970.
    public var startedAt: Double
    public var heartbeatAt: Double
    /// The configuration revision the node has applied.
    public var revision: Int64

    public init(
        id: String, address: String, version: String, startedAt: Double, heartbeatAt: Double, revision: Int64
    ) {
        self.id = id
        self.address = address
        self.version = version
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
        self.revision = revision
    }
}

/// A store shared by several nodes: each registers itself and heartbeats, and can list the
/// others (the control API's `GET /v1/cluster`).
public protocol ClusterMembership: Sendable {
    /// Records that `node` is alive now, at the revision this process has applied.
    func heartbeat(_ node: ClusterNode) async throws
    /// Removes `id` (a node shutting down cleanly).
    func leave(_ id: String) async throws
    /// The nodes that heartbeated within `window` seconds, and the database's revision.
    func members(within window: Double) async throws -> (nodes: [ClusterNode], revision: Int64)
}

/// What one node learned about an AI instance that the others should know at once: a 429 told
/// it to cool down, or its circuit breaker opened. Health probes stay per node.
public struct SharedFailure: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case cooldown
        case breakerOpen = "breaker_open"
    }

    /// The instance's identity, the same on every node (`/apisix/routes/1#instances[0]`).
    public var key: String
    public var kind: Kind
    /// How long from now.
    public var seconds: Double

    public init(key: String, kind: Kind, seconds: Double) {
        self.key = key
        self.kind = kind
        self.seconds = seconds
    }
}

/// A store that carries ``SharedFailure``s between the nodes of a cluster.
public protocol FailureSharing: Sendable {
    /// Tells the other nodes (they hear it within about a second).
    func publish(_ failure: SharedFailure, from node: String) async throws
    /// Where failures published by other nodes go (set before the store's watch starts).
    func onSharedFailure(_ handler: @escaping @Sendable (SharedFailure) -> Void)
}

/// Another node wrote since this node last loaded: its write was validated against an older
/// configuration, so it changed nothing. The node reloads and validates again.
public struct StoreConflict: Error, Sendable, CustomStringConvertible {
    public init() {}
    public var description: String { "the configuration changed on another node" }
}

import Atomics
import SwitchboardCore

/// The compiled, immutable configuration the data plane reads. A request loads the current
/// snapshot once (one atomic load) and uses only it, so a configuration change never shows a
/// request half of the old and half of the new configuration, and no lock is taken.
public final class Snapshot: AtomicReference, Sendable {
    public let revision: Int
    public let router: RouteMatcher<CompiledRoute>
    public let consumers: [String: CompiledConsumer]
    /// Per auth plugin, consumer key → identity; built once here so that authentication is a
    /// hash lookup, never a scan of the consumers.
    public let authKeys: [String: [String: AuthIdentity]]
    public let pluginMetadata: [String: JSONValue]
    /// The plugins of every global rule, by priority: they run for every request, before the
    /// route's in each phase.
    public let globalRules: [PluginSlot]
    /// The `ssls` server certificates, picked by SNI on TLS listeners.
    public let certificates: CertificateTable

    public init(
        revision: Int, router: RouteMatcher<CompiledRoute>, consumers: [String: CompiledConsumer],
        authKeys: [String: [String: AuthIdentity]], pluginMetadata: [String: JSONValue],
        globalRules: [PluginSlot] = [], certificates: CertificateTable = .empty
    ) {
        self.revision = revision
        self.router = router
        self.consumers = consumers
        self.authKeys = authKeys
        self.pluginMetadata = pluginMetadata
        self.globalRules = globalRules
        self.certificates = certificates
    }

    public static let empty = Snapshot(
        revision: 0, router: RouteMatcher([]), consumers: [:], authKeys: [:], pluginMetadata: [:])
}

/// Who a consumer key belongs to.
public struct AuthIdentity: Sendable, Equatable {
    public var consumer: String
    public var credentialID: String?
}

/// A route merged with its service and compiled for the data plane.
public final class CompiledRoute: Sendable {
    public let id: String
    public let name: String?
    public let serviceID: String?
    public let plugins: [PluginSlot]
    public let upstream: CompiledUpstream?
    /// The route's own `uri`/`uris` and `host`/`hosts` patterns: the `matched_uri` and
    /// `matched_host` metric labels (configuration, never the request's own path or Host).
    public let uriPattern: String
    public let hostPattern: String

    public init(
        id: String, name: String?, serviceID: String?, plugins: [PluginSlot], upstream: CompiledUpstream?,
        uriPattern: String = "", hostPattern: String = ""
    ) {
        self.id = id
        self.name = name
        self.serviceID = serviceID
        self.plugins = plugins
        self.upstream = upstream
        self.uriPattern = uriPattern
        self.hostPattern = hostPattern
    }
}

public final class CompiledConsumer: Sendable {
    public let username: String
    public let customID: String?
    /// The consumer's plugins other than auth plugins (over its group's), merged over the
    /// route's after auth.
    public let plugins: [PluginSlot]
    public let groupID: String?

    public init(username: String, customID: String?, plugins: [PluginSlot], groupID: String? = nil) {
        self.username = username
        self.customID = customID
        self.plugins = plugins
        self.groupID = groupID
    }
}

/// Holds the current snapshot; swapped atomically by the configuration manager.
public final class SnapshotHolder: Sendable {
    private let current: ManagedAtomic<Snapshot>

    public init(_ initial: Snapshot = .empty) {
        self.current = ManagedAtomic(initial)
    }

    public func load() -> Snapshot { current.load(ordering: .acquiring) }
    public func store(_ snapshot: Snapshot) { current.store(snapshot, ordering: .releasing) }
}

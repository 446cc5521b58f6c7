import Foundation
import Logging
import SwitchboardCore
import SwitchboardStore

/// Owns the configuration: the in-memory ``ConfigState`` (what the Admin API reads), the store
/// (where it persists) and the published ``Snapshot`` (what the data plane reads).
///
/// Writes are applied strictly one at a time — validate against the current state (references
/// included), persist, then swap in a newly compiled snapshot — under a FIFO write lock held
/// across the store's `await`: actor isolation alone would let a second write interleave at that
/// suspension (two store transactions at once, or a delete and a write that both pass their
/// reference checks). The data plane never waits on it.
public actor ConfigManager {
    public nonisolated let store: any ConfigStore
    public let validator: ConfigValidator
    public let compiler: SnapshotCompiler
    public let holder: SnapshotHolder
    /// The secret fields of configuration: masked by the Admin API, sealed in the store.
    public let sensitive: SensitiveFields
    let encryption: FieldEncryption
    let secrets: SecretResolver
    private let logger: Logger
    public private(set) var state = ConfigState()
    /// How many externally changed configurations were refused as invalid (the previous one
    /// stayed in force).
    public private(set) var rejectedReloads = 0
    private var ids = IDGenerator()
    /// The write lock: whether a write is in progress, and the writes waiting for it in order.
    private var writing = false
    private var waitingWriters: [CheckedContinuation<Void, Never>] = []

    public init(
        store: any ConfigStore, registry: PluginRegistry, holder: SnapshotHolder, services: GatewayServices,
        keyring: [[UInt8]] = [], environment: [String: String] = ProcessInfo.processInfo.environment,
        reservedEnvironment: Set<String> = []
    ) {
        self.store = store
        self.validator = ConfigValidator(catalog: registry.catalog, certificateCheck: TLSCertificates.check)
        self.sensitive = SensitiveFields(catalog: registry.catalog)
        self.encryption = FieldEncryption(keyring: keyring, fields: sensitive)
        self.secrets = SecretResolver(
            clients: services.clients, environment: environment, reserved: reservedEnvironment)
        self.compiler = SnapshotCompiler(registry: registry, services: services)
        self.holder = holder
        self.logger = services.logger
    }

    /// A write the Admin API refuses; `status` and `body` are what it answers.
    public struct Rejection: Error, Sendable {
        public var status: Int
        public var body: JSONValue

        public init(_ status: Int, _ body: JSONValue) {
            self.status = status
            self.body = body
        }

        public static func badRequest(_ message: String) -> Rejection {
            Rejection(400, ["error_msg": .string(message)])
        }
    }

    /// The deepest configuration document (and PATCH sub-path) accepted.
    static let maximumDepth = 64

    /// Kinds in the order their references need them.
    static let dependencyOrder: [ResourceKind] = [
        .secrets, .ssls, .upstreams, .services, .pluginConfigs, .consumerGroups, .consumers, .credentials, .routes,
        .globalRules, .pluginMetadata,
    ]

    /// Loads the store and publishes the first snapshot. With `strict`, an invalid object is a
    /// startup error (standalone files); otherwise it is logged and skipped (it stays stored).
    public func start(strict: Bool) async throws {
        let stored = try await store.loadAll()
        let records = opened(stored)
        state = try buildState(records, strict: strict)
        ids = IDGenerator(last: state.revision)
        try await resealIfNeeded(stored)
        await publish()
    }

    /// Records as read from the store, their sealed fields opened. One that cannot be opened
    /// (no key of the keyring fits) is logged and left out; it stays in the store.
    private func opened(_ records: [StoredResource]) -> [StoredResource] {
        records.compactMap { record in
            do { return try encryption.open(record) } catch {
                logger.error("\(error); it is kept in the store but not used")
                return nil
            }
        }
    }

    /// With a keyring, a store written before encryption was turned on (or sealed with a key
    /// that is no longer first) is sealed anew with the first key at start, so its secrets are
    /// in clear on disk no longer than until the next start. Only for a store of this process
    /// alone: cluster nodes seal on their next write.
    private func resealIfNeeded(_ stored: [StoredResource]) async throws {
        guard encryption.isEnabled, store.isWritable else { return }
        let pending = stored.filter { encryption.needsReseal($0) }
        guard !pending.isEmpty else { return }
        if store is PostgresConfigStore {
            logger.notice(
                "\(pending.count) stored objects hold secrets in clear or sealed with a key that is not the keyring's first; each is sealed with the first key at its next write"
            )
            return
        }
        var changes: [StoreChange] = []
        for record in pending {
            guard let current = state[record.kind, record.id] else { continue }
            changes.append(.put(try encryption.seal(current)))
        }
        guard !changes.isEmpty else { return }
        try await store.apply(changes)
        logger.notice("sealed the secret fields of \(changes.count) stored objects with the first key of the keyring")
    }

    /// Replaces everything with new store content (standalone file edited, another node of a
    /// cluster wrote). An invalid file leaves the current configuration in force. Waits for a
    /// write of this node in progress, so the two never interleave.
    public func reload(_ records: [StoredResource]) async {
        await beginWrite()
        defer { endWrite() }
        var records = records
        do {
            // A shared store is read now, under the write lock: never older than this node's
            // own last write.
            if let fresh = try await store.latest() { records = fresh }
            records = opened(records)
        } catch {
            logger.error("configuration not reloaded from \(store.location): \(error)")
            return
        }
        do {
            state = try buildState(records, strict: true)
            await publish()
            logger.info("configuration reloaded from \(store.location): \(records.count) objects")
        } catch {
            rejectedReloads += 1
            logger.error("configuration not reloaded from \(store.location): \(error)")
        }
    }

    /// Externally changed configuration that could not even be read (e.g. broken YAML).
    public func reloadFailed(_ error: any Error) {
        rejectedReloads += 1
        logger.error("configuration not reloaded from \(store.location): \(error)")
    }

    private func buildState(_ records: [StoredResource], strict: Bool) throws -> ConfigState {
        var built = ConfigState()
        for kind in Self.dependencyOrder {
            for record in records where record.kind == kind {
                do {
                    var value = try validator.validate(kind, id: record.id, value: record.value, state: built)
                    if kind != .credentials && kind != .consumers && kind != .pluginMetadata && value["id"] == nil {
                        value["id"] = .string(record.id)
                    }
                    var checked = record
                    checked.value = value
                    built.set(checked)
                } catch {
                    let message = "\(kind.singular) \(record.id) in \(store.location) is invalid: \(error)"
                    if strict { throw StoreError(message) }
                    logger.error("\(message); it is kept in the store but not used")
                }
            }
        }
        return built
    }

    /// Resolves secret references, compiles and swaps in a new snapshot, then starts and stops
    /// health checkers to match it.
    private func publish() async {
        let values = await secrets.resolve(state)
        for failure in values.failures.values { logger.error("\(failure)") }
        let generation = compiler.health.beginGeneration()
        holder.store(compiler.compile(state, secrets: values))
        compiler.health.commit(generation)
    }

    /// A fresh id for `POST`: from the store when it is shared by a cluster (no two nodes hand
    /// out the same), else numbered here.
    public func nextID() async throws(Rejection) -> String {
        do {
            if let shared = try await store.allocateID() { return IDGenerator.format(shared) }
        } catch {
            logger.error("store could not allocate an id: \(error)")
            throw Rejection(503, ["error_msg": .string("configuration store unavailable: \(error)")])
        }
        return ids.next(atLeast: state.revision + 1)
    }

    private func beginWrite() async {
        guard writing else {
            writing = true
            return
        }
        await withCheckedContinuation { waitingWriters.append($0) }
    }

    private func endWrite() {
        if waitingWriters.isEmpty {
            writing = false
        } else {
            waitingWriters.removeFirst().resume()  // the lock passes to the next writer
        }
    }

    /// Merge-patches one object (or replaces the part at `subPath`) under the write lock, so a
    /// concurrent write cannot be lost between reading and writing it.
    public func patch(_ kind: ResourceKind, id: String, subPath: [String], patch: JSONValue) async throws(Rejection)
        -> StoredResource
    {
        guard store.isWritable else { throw readOnly() }
        await beginWrite()
        defer { endWrite() }
        return try await retrying { () async throws(Rejection) -> StoredResource in
            try await patchLocked(kind, id: id, subPath: subPath, patch: patch)
        }
    }

    private func patchLocked(_ kind: ResourceKind, id: String, subPath: [String], patch: JSONValue)
        async throws(Rejection) -> StoredResource
    {
        guard let existing = state[kind, id] else { throw Rejection(404, ["message": "Key not found"]) }
        guard subPath.count <= Self.maximumDepth else {
            throw .badRequest("invalid sub path: deeper than \(Self.maximumDepth) levels")
        }
        var value: JSONValue
        if !subPath.isEmpty {
            guard let replaced = existing.value.replacing(path: subPath, with: patch) else {
                throw .badRequest("invalid sub path /\(subPath.joined(separator: "/"))")
            }
            value = replaced
        } else {
            value = existing.value.merging(patch: patch)
        }
        value["id"] = .string(id)
        return try await write(kind, id: id, value: value).0
    }

    /// Creates or replaces one object. `value` is what the client sent (with `id`/`username` set);
    /// returns the stored record and whether it was created.
    public func put(_ kind: ResourceKind, id: String, value: JSONValue) async throws(Rejection) -> (
        StoredResource, created: Bool
    ) {
        guard store.isWritable else { throw readOnly() }
        await beginWrite()
        defer { endWrite() }
        return try await retrying { () async throws(Rejection) -> (StoredResource, created: Bool) in
            try await write(kind, id: id, value: value)
        }
    }

    /// ``put(_:id:value:)`` with the write lock held.
    private func write(_ kind: ResourceKind, id: String, value: JSONValue) async throws(Rejection) -> (
        StoredResource, created: Bool
    ) {
        if kind == .credentials, let owner = id.components(separatedBy: "/credentials/").first,
            state[.consumers, owner] == nil
        {
            throw Rejection(404, ["error_msg": "consumer not found"])
        }
        // Every object is a JSON object: an array (`[]`, which an empty-object check may let
        // pass) would be stored without its id and required fields.
        guard case .object = value else {
            throw .badRequest("invalid configuration: wrong type: expected object, got table")  // APISIX's words
        }
        // A document the store could not read back must never be stored (a restart would
        // refuse it): configuration nests far less than this.
        if value.nestingDepth(limit: Self.maximumDepth) > Self.maximumDepth {
            throw .badRequest("invalid configuration: nesting deeper than \(Self.maximumDepth) levels")
        }
        let existing = state[kind, id]
        var value = value
        do {
            value = try sensitive.restoringMasks(kind, new: value, old: existing?.value)
        } catch {
            throw .badRequest("invalid configuration: \(error.message)")
        }
        var looksSealed = false
        _ = sensitive.mapSecrets(kind, value) { (text) throws(Never) -> String in
            if text.hasPrefix(FieldEncryption.prefix) { looksSealed = true }
            return text
        }
        if looksSealed {
            throw .badRequest("invalid configuration: a secret value may not start with \(FieldEncryption.prefix)")
        }
        var validated: JSONValue
        do {
            validated = try validator.validate(kind, id: id, value: value, state: state, isWrite: true)
        } catch {
            throw .badRequest(error.message)
        }
        // A reference that cannot be resolved now is refused with its name, rather than
        // stored and silently left out of the data plane.
        var references = Set<String>()
        SecretResolver.collect(validated["plugins"], into: &references)
        if !references.isEmpty {
            let resolved = await secrets.resolve(references, state: state)
            if let failure = resolved.failures.values.sorted(by: { $0.reference < $1.reference }).first {
                throw .badRequest(failure.description)
            }
        }
        let now = Int(Date().timeIntervalSince1970)
        validated["create_time"] = existing?.value["create_time"] ?? .int(now)
        validated["update_time"] = .int(now)
        let index = max(state.revision + 1, ids.last + 1)
        ids = IDGenerator(last: index)
        let record = StoredResource(
            kind: kind, id: id, value: validated, createdIndex: existing?.createdIndex ?? index, modifiedIndex: index)
        if kind == .secrets { try await checkSecretUsers(record) }
        try await persist([.put(record)])
        state.set(record)
        await publish()
        return (record, existing == nil)
    }

    /// A changed `secrets` object must still resolve every reference that uses it: otherwise
    /// the objects holding them would drop out of the data plane at the next compile.
    private func checkSecretUsers(_ record: StoredResource) async throws(Rejection) {
        let prefix = "$secret://\(record.id)/"
        let references = SecretResolver.references(in: state).filter { $0.hasPrefix(prefix) }
        guard !references.isEmpty else { return }
        var next = state
        next.set(record)
        let resolved = await secrets.resolve(references, state: next)
        if let failure = resolved.failures.values.sorted(by: { $0.reference < $1.reference }).first {
            throw .badRequest("\(failure.description) (this secrets object is in use)")
        }
    }

    /// The first object whose plugins reference the `secrets` object `id`.
    private func secretUser(_ id: String) -> StoredResource? {
        let prefix = "$secret://\(id)/"
        for kind in [
            ResourceKind.routes, .services, .pluginConfigs, .consumerGroups, .consumers, .credentials, .globalRules,
        ] {
            for record in state.list(kind) {
                var found = Set<String>()
                SecretResolver.collect(record.value["plugins"], into: &found)
                if found.contains(where: { $0.hasPrefix(prefix) }) { return record }
            }
        }
        return nil
    }

    /// Deletes one object (a consumer with its credentials). Refuses to delete an upstream or a
    /// service that a route or service still uses, as APISIX does.
    public func delete(_ kind: ResourceKind, id: String) async throws(Rejection) -> StoredResource {
        guard store.isWritable else { throw readOnly() }
        await beginWrite()
        defer { endWrite() }
        return try await retrying { () async throws(Rejection) -> StoredResource in
            try await deleteLocked(kind, id: id)
        }
    }

    private func deleteLocked(_ kind: ResourceKind, id: String) async throws(Rejection) -> StoredResource {
        guard let existing = state[kind, id] else { throw Rejection(404, ["message": "Key not found"]) }
        let users: [ResourceKind: (field: String, kinds: [ResourceKind])] = [
            .pluginConfigs: ("plugin_config_id", [.routes]), .consumerGroups: ("group_id", [.consumers]),
        ]
        if kind == .secrets, let user = secretUser(id) {
            throw .badRequest("can not delete this secret, \(user.kind.singular) [\(user.id)] is still using it now")
        }
        if let (field, kinds) = users[kind] {
            for kindUsing in kinds {
                for user in state.list(kindUsing) where user.value[field].map(ConfigValidator.idString) == id {
                    throw .badRequest(
                        "can not delete this \(kind.singular), \(user.kind.singular) [\(user.id)] is still using it now"
                    )
                }
            }
        }
        if kind == .upstreams || kind == .services {
            let field = kind == .upstreams ? "upstream_id" : "service_id"
            for user in state.list(.routes) + state.list(.services)
            where user.value[field].map(ConfigValidator.idString) == id {
                throw .badRequest(
                    "can not delete this \(kind.singular), \(user.kind.singular) [\(user.id)] is still using it now")
            }
        }
        var changes: [StoreChange] = [.delete(kind, id: id)]
        if kind == .consumers {
            changes += state.credentials(of: id).map { .delete(.credentials, id: $0.id) }
        }
        try await persist(changes)
        for change in changes {
            if case .delete(let k, let i) = change { state.remove(k, i) }
        }
        await publish()
        return existing
    }

    private func persist(_ changes: [StoreChange]) async throws(Rejection) {
        do {
            try await store.apply(
                changes.map { change in
                    if case .put(let record) = change { return .put(try encryption.seal(record)) }
                    return change
                })
        } catch is StoreConflict {
            // Another node wrote first: take its configuration, then the caller validates again.
            if let records = try? await store.latest(), let fresh = try? buildState(opened(records), strict: false) {
                state = fresh
                await publish()
            }
            throw Self.conflict
        } catch let error as StoreUnavailable {
            logger.error("store write refused, the store is unavailable: \(error)")
            throw Rejection(503, ["error_msg": .string("configuration store unavailable: \(error)")])
        } catch {
            logger.error("store write failed: \(error)")
            throw Rejection(500, ["error_msg": .string("failed to write to the store: \(error)")])
        }
    }

    /// A write that met another node's (see ``persist(_:)``); retried by ``retrying(_:)``.
    static let conflict = Rejection(
        409, ["error_msg": "the configuration changed on another node while writing; try again"])

    /// Runs a write again after another node's write got in first, so the answer is the one
    /// validated against the cluster's current configuration. Each retry follows a write that
    /// did commit elsewhere, so the cluster makes progress; 20 tries cover nodes writing
    /// flat out against each other.
    private func retrying<T>(_ write: () async throws(Rejection) -> T) async throws(Rejection) -> T {
        var attempt = 0
        while true {
            do {
                return try await write()
            } catch  where error.status == 409 && attempt < 19 {
                attempt += 1
            }
        }
    }

    private func readOnly() -> Rejection {
        Rejection(
            405,
            [
                "error_msg": .string(
                    "the Admin API is read-only: configuration comes from \(store.location) (standalone mode)")
            ])
    }
}

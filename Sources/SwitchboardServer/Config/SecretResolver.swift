import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SwitchboardCore
import Synchronization

/// Resolves the secret references of plugin configuration when the configuration is compiled,
/// in APISIX's syntax: `$env://NAME` (optionally `$env://NAME/field` for a JSON variable) and
/// `$secret://vault/<id>/<path>/<key>`, read from the KV engine of the `secrets/vault/<id>`
/// object (`GET <uri>/v1/<prefix>/<path>` with `X-Vault-Token`; KV v2's `data.data` and KV v1's
/// `data` are both understood).
///
/// A resolved value is kept, keyed by the reference and the Vault object's revision, so a
/// configuration change does not ask Vault again for what it already answered, and a Vault
/// outage after start changes nothing. Writing the `secrets` object (or the route) again reads
/// the value afresh.
public final class SecretResolver: Sendable {
    /// Why a reference has no value; the message names the reference.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var reference: String
        public var reason: String
        public var description: String { "secret reference \(reference) could not be resolved: \(reason)" }
    }

    /// Resolved values for one compile.
    public struct Values: Sendable {
        public var values: [String: String] = [:]
        public var failures: [String: Failure] = [:]

        public init() {}

        /// `value` with every reference replaced; the first unresolved one throws.
        public func substitute(_ value: JSONValue) throws(Failure) -> JSONValue {
            switch value {
            case .string(let text) where SensitiveFields.isReference(text):
                if let resolved = values[text] { return .string(resolved) }
                throw failures[text] ?? Failure(reference: text, reason: "not resolved")
            case .array(let items):
                var out: [JSONValue] = []
                out.reserveCapacity(items.count)
                for item in items { out.append(try substitute(item)) }
                return .array(out)
            case .object(let object):
                var out = JSONObject()
                for (key, child) in object { out[key] = try substitute(child) }
                return .object(out)
            default:
                return value
            }
        }
    }

    private let environment: [String: String]
    /// Variables the gateway's own configuration file reads: never resolvable by reference.
    private let reserved: Set<String>
    private let clients: UpstreamClients
    private let cache = Mutex<[String: String]>([:])
    private let failures = Mutex<[String: (failure: Failure, until: ContinuousClock.Instant)]>([:])
    /// How long a failed Vault read is answered from memory.
    static let failureMemory: Duration = .seconds(10)
    /// The longest a Vault read may take; a compile waits for it.
    static let defaultTimeout = 5.0

    public init(
        clients: UpstreamClients, environment: [String: String] = ProcessInfo.processInfo.environment,
        reserved: Set<String> = []
    ) {
        self.clients = clients
        self.environment = environment
        self.reserved = reserved
    }

    /// Every reference in the plugin configuration of `state`.
    static func references(in state: ConfigState) -> Set<String> {
        var found = Set<String>()
        for kind in [
            ResourceKind.routes, .services, .consumers, .credentials, .consumerGroups, .pluginConfigs, .globalRules,
        ] {
            for record in state.list(kind) { collect(record.value["plugins"], into: &found) }
        }
        return found
    }

    /// The references in one value.
    static func collect(_ value: JSONValue?, into found: inout Set<String>) {
        switch value {
        case .string(let text)? where SensitiveFields.isReference(text): found.insert(text)
        case .array(let items)?: for item in items { collect(item, into: &found) }
        case .object(let object)?: for child in object.values { collect(child, into: &found) }
        default: break
        }
    }

    /// Resolves every reference of `state` (Vault reads run concurrently), and forgets the
    /// values of references the configuration no longer has.
    public func resolve(_ state: ConfigState) async -> Values {
        let references = Self.references(in: state)
        let values = await resolve(references, state: state)
        cache.withLock { cache in cache = cache.filter { references.contains(Self.reference(ofCacheKey: $0.key)) } }
        return values
    }

    /// The reference a cache key (`<reference>#<revision>`) is for.
    private static func reference(ofCacheKey key: String) -> String {
        guard let hash = key.lastIndex(of: "#") else { return key }
        return String(key[..<hash])
    }

    /// Resolves `references` against the `secrets` objects of `state`.
    public func resolve(_ references: Set<String>, state: ConfigState) async -> Values {
        var result = Values()
        await withTaskGroup(of: (String, Result<String, Failure>).self) { group in
            for reference in references {
                group.addTask { (reference, await self.resolve(reference, state: state)) }
            }
            for await (reference, outcome) in group {
                switch outcome {
                case .success(let value): result.values[reference] = value
                case .failure(let failure): result.failures[reference] = failure
                }
            }
        }
        return result
    }

    private func resolve(_ reference: String, state: ConfigState) async -> Result<String, Failure> {
        let fail = { (reason: String) in Result<String, Failure>.failure(Failure(reference: reference, reason: reason))
        }
        if reference.hasPrefix("$env://") || reference.hasPrefix("$ENV://") {
            return resolveEnvironment(reference)
        }
        // $secret://<manager>/<id>/<path>/<key>
        let path = reference.dropFirst("$secret://".count).split(separator: "/", omittingEmptySubsequences: false)
        guard path.count >= 4, path.allSatisfy({ !$0.isEmpty }) else {
            return fail("expected $secret://vault/<id>/<path>/<key>")
        }
        let id = "\(path[0])/\(path[1])"
        guard path[0] == "vault" else { return fail("unknown secret manager \(path[0])") }
        guard let secret = state[.secrets, id] else { return fail("no secrets object \(id)") }
        let cacheKey = "\(reference)#\(secret.modifiedIndex)"
        if let cached = cache.withLock({ $0[cacheKey] }) { return .success(cached) }
        // A failed read is not repeated for a while: with Vault down, every configuration write
        // would otherwise wait for its timeout again.
        let now = ContinuousClock.now
        if let failed = failures.withLock({ $0[cacheKey] }), failed.until > now {
            return .failure(failed.failure)
        }
        let mainPath = path[2..<(path.count - 1)].joined(separator: "/")
        let field = String(path[path.count - 1])
        switch await readVault(secret.value, path: mainPath, field: field) {
        case .success(let value):
            cache.withLock { cache in
                // A value read for an earlier revision of the secrets object is no longer used.
                cache = cache.filter { Self.reference(ofCacheKey: $0.key) != reference }
                cache[cacheKey] = value
            }
            return .success(value)
        case .failure(let reason):
            let failure = Failure(reference: reference, reason: reason.description)
            failures.withLock { failures in
                failures = failures.filter { $0.value.until > now }
                failures[cacheKey] = (failure, now + Self.failureMemory)
            }
            return .failure(failure)
        }
    }

    private func resolveEnvironment(_ reference: String) -> Result<String, Failure> {
        let rest = reference.dropFirst("$env://".count)
        let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0])
        guard !reserved.contains(name) else {
            return .failure(
                Failure(
                    reference: reference,
                    reason: "environment variable \(name) is read by the gateway's own configuration file"))
        }
        guard !name.isEmpty, let value = environment[name] else {
            return .failure(Failure(reference: reference, reason: "environment variable \(name) is not set"))
        }
        guard parts.count == 2 else { return .success(value) }
        let field = String(parts[1])
        guard let document = try? JSONParser.parse(Array(value.utf8)), let inner = document[field]?.stringValue else {
            return .failure(
                Failure(reference: reference, reason: "environment variable \(name) has no JSON string field \(field)"))
        }
        return .success(inner)
    }

    struct VaultError: Error, CustomStringConvertible {
        var description: String
    }

    private func readVault(_ conf: JSONValue, path: String, field: String) async -> Result<String, VaultError> {
        guard let base = conf["uri"]?.stringValue, let prefix = conf["prefix"]?.stringValue,
            var token = conf["token"]?.stringValue
        else { return .failure(VaultError(description: "the secrets object is incomplete")) }
        if SensitiveFields.isReference(token) {
            guard case .success(let resolved) = resolveEnvironment(token) else {
                return .failure(VaultError(description: "its token \(token) is not set"))
            }
            token = resolved
        }
        let trimmedBase = base.hasSuffix("/") ? String(base.dropLast()) : base
        let url = "\(trimmedBase)/v1/\(prefix.trimmingCharacters(in: ["/"]))/\(path)"
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "X-Vault-Token", value: token)
        if let namespace = conf["namespace"]?.stringValue {
            request.headers.add(name: "X-Vault-Namespace", value: namespace)
        }
        let timeout = conf["timeout"]?.doubleValue ?? Self.defaultTimeout
        do {
            let response = try await clients.client(readTimeoutMs: Int(timeout * 1000)).execute(
                request, timeout: .milliseconds(Int64(timeout * 1000)))
            let body = try await response.body.collect(upTo: 1024 * 1024)
            guard response.status == .ok else {
                return .failure(VaultError(description: "Vault at \(url) answered \(response.status.code)"))
            }
            guard let document = try? JSONParser.parse(body.readableBytesView) else {
                return .failure(VaultError(description: "Vault at \(url) answered no JSON"))
            }
            // KV v2 nests the secret's fields in data.data; KV v1 has them in data.
            let fields = document["data"]?["data"]?.objectValue != nil ? document["data"]?["data"] : document["data"]
            guard let value = fields?[field] else {
                return .failure(VaultError(description: "Vault's \(path) has no field \(field)"))
            }
            return .success(value.stringValue ?? value.serialized())
        } catch {
            return .failure(VaultError(description: "Vault at \(url) could not be read: \(error)"))
        }
    }
}

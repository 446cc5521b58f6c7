import Foundation
import Logging
import SwitchboardCore

/// Standalone mode: configuration comes from one YAML (or JSON) file in APISIX's standalone
/// format (top-level `routes:`, `services:`, `upstreams:`, `consumers:`, `plugin_metadata:`
/// lists; credentials as `consumers` entries with `id: <username>/credentials/<id>`). The file
/// is the source of truth, so the Admin API is read-only; edits are picked up by polling.
public final class FileConfigStore: ConfigStore {
    public let isWritable = false
    public let location: String
    private let path: String
    private let pollInterval: Duration
    private let logger: Logger

    public init(path: String, pollInterval: Duration = .milliseconds(500), logger: Logger) {
        self.path = path
        self.location = "file:\(path)"
        self.pollInterval = pollInterval
        self.logger = logger
    }

    public func loadAll() async throws -> [StoredResource] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StoreError("cannot read store \(location)")
        }
        return try Self.parse(String(decoding: data, as: UTF8.self), source: location)
    }

    /// Parses standalone content into records (not yet validated).
    public static func parse(_ text: String, source: String) throws -> [StoredResource] {
        let document: JSONValue
        do {
            document = try YAMLDocument.parse(text, environment: ProcessInfo.processInfo.environment) ?? .object([:])
        } catch {
            throw StoreError("\(source): invalid YAML: \(error)")
        }
        guard case .object(let top) = document else { throw StoreError("\(source): expected a mapping at top level") }
        var records: [StoredResource] = []
        var index = 0
        func add(_ kind: ResourceKind, _ id: String, _ value: JSONValue) {
            index += 1
            records.append(StoredResource(kind: kind, id: id, value: value, createdIndex: index, modifiedIndex: index))
        }
        for (section, content) in top {
            let kind: ResourceKind
            switch section {
            case "routes": kind = .routes
            case "services": kind = .services
            case "upstreams": kind = .upstreams
            case "consumers": kind = .consumers
            case "plugin_metadata": kind = .pluginMetadata
            case "consumer_groups": kind = .consumerGroups
            case "plugin_configs": kind = .pluginConfigs
            case "global_rules": kind = .globalRules
            case "ssls": kind = .ssls
            case "secrets": kind = .secrets
            default: throw StoreError("\(source): unknown section \"\(section)\"")
            }
            guard case .array(let items) = content else { throw StoreError("\(source): \(section) must be a list") }
            for (i, item) in items.enumerated() {
                guard case .object = item else { throw StoreError("\(source): \(section)[\(i)] must be a mapping") }
                switch kind {
                case .consumers:
                    if let id = item["id"]?.stringValue, id.contains("/credentials/") {
                        var value = item
                        value["id"] = .string(String(id.split(separator: "/").last ?? ""))
                        add(.credentials, id, value)
                    } else if let username = item["username"]?.stringValue {
                        add(.consumers, username, item)
                    } else {
                        throw StoreError("\(source): consumers[\(i)] has no username")
                    }
                default:
                    guard let id = item["id"].map(ConfigValidator.idString) else {
                        throw StoreError("\(source): \(section)[\(i)] has no id")
                    }
                    add(kind, id, item)
                }
            }
        }
        return records
    }

    public func apply(_ changes: [StoreChange]) async throws {
        throw StoreError("\(location) is read-only")
    }

    public func metadata(_ key: String) async throws -> String? { nil }
    public func setMetadata(_ key: String, _ value: String) async throws {}

    /// Polls the file's modification time and size; on a change, reads it and hands the new
    /// content over. A file that cannot be parsed is reported and ignored (the previous
    /// configuration stays in force).
    public func watch(
        _ onChange: @escaping @Sendable ([StoredResource]) async -> Void,
        onFailure: @escaping @Sendable (any Error) async -> Void
    ) async throws {
        var last = fingerprint()
        while !Task.isCancelled {
            try await Task.sleep(for: pollInterval)
            let current = fingerprint()
            guard current != last else { continue }
            last = current
            do {
                await onChange(try loadAll())
            } catch {
                await onFailure(error)
            }
        }
    }

    private func fingerprint() -> String {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return "missing" }
        let date = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        return "\(date)-\(size)"
    }

    public func close() async throws {}
}

import Collections

/// Every stored configuration object, by kind and id, in creation order. The Admin API reads
/// it, the compiler turns it into a data-plane snapshot. A value type: each write produces a
/// new state, so a half-applied write can never be observed.
public struct ConfigState: Sendable, Equatable {
    public private(set) var resources: [ResourceKind: OrderedDictionary<String, StoredResource>] = [:]
    /// The highest `modifiedIndex` handed out so far.
    public private(set) var revision = 0

    public init(_ records: [StoredResource] = []) {
        for record in records.sorted(by: { $0.createdIndex < $1.createdIndex }) {
            resources[record.kind, default: [:]][record.id] = record
            revision = max(revision, record.modifiedIndex)
        }
    }

    public subscript(kind: ResourceKind, id: String) -> StoredResource? {
        resources[kind]?[id]
    }

    public func list(_ kind: ResourceKind) -> [StoredResource] {
        resources[kind].map { Array($0.values) } ?? []
    }

    public mutating func set(_ record: StoredResource) {
        resources[record.kind, default: [:]][record.id] = record
        revision = max(revision, record.modifiedIndex)
    }

    @discardableResult
    public mutating func remove(_ kind: ResourceKind, _ id: String) -> StoredResource? {
        resources[kind]?.removeValue(forKey: id)
    }

    /// Credentials of one consumer (their ids are `<username>/credentials/<id>`).
    public func credentials(of username: String) -> [StoredResource] {
        let prefix = "\(username)/credentials/"
        return list(.credentials).filter { $0.id.hasPrefix(prefix) }
    }
}

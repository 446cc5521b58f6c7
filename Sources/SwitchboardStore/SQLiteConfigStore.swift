import Foundation
import Logging
import NIOPosix
import SQLiteNIO
import SwitchboardCore

/// The embedded default store: one SQLite file in WAL mode with full fsync, so every write the
/// Admin API acknowledged survives a restart, a crash or `kill -9`.
public final class SQLiteConfigStore: ConfigStore {
    public let isWritable = true
    public let location: String
    private let connection: SQLiteConnection
    private let logger: Logger

    private init(location: String, connection: SQLiteConnection, logger: Logger) {
        self.location = location
        self.connection = connection
        self.logger = logger
    }

    public static func open(path: String, logger: Logger) async throws -> SQLiteConfigStore {
        let location = "sqlite:\(path)"
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw StoreError("cannot open store \(location): it is a directory")
        }
        // The store holds provider and consumer keys (sealed only when a keyring is set): the
        // database and its WAL and shared-memory files are readable by their owner only.
        // SQLite creates the WAL and shm files with the database file's permissions.
        if !FileManager.default.fileExists(atPath: path) {
            FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        }
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw StoreError("cannot open store \(location): \(error)")
        }
        let store = SQLiteConfigStore(location: location, connection: connection, logger: logger)
        do {
            _ = try await connection.query("PRAGMA journal_mode=WAL")
            _ = try await connection.query("PRAGMA synchronous=FULL")
            _ = try await connection.query("PRAGMA busy_timeout=5000")
            // Replaced and deleted values are overwritten on disk, so an old provider key does
            // not linger in free pages after it was changed or sealed.
            _ = try await connection.query("PRAGMA secure_delete=ON")
            _ = try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS resources (
                    kind TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL,
                    created_index INTEGER NOT NULL, modified_index INTEGER NOT NULL,
                    PRIMARY KEY (kind, id))
                """)
            _ = try await connection.query(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            _ = try await connection.query("PRAGMA quick_check")
        } catch {
            try? await connection.close()
            throw StoreError("cannot use store \(location): \(error)")
        }
        return store
    }

    public func loadAll() async throws -> [StoredResource] {
        let rows = try await connection.query(
            "SELECT kind, id, value, created_index, modified_index FROM resources ORDER BY created_index")
        var records: [StoredResource] = []
        for row in rows {
            guard let kindText = row.column("kind")?.string, let id = row.column("id")?.string,
                let text = row.column("value")?.string,
                let record = StoredResource.fromRow(
                    kind: kindText, id: id, text: text, created: Int(row.column("created_index")?.integer ?? 0),
                    modified: Int(row.column("modified_index")?.integer ?? 0), location: location, logger: logger)
            else { continue }
            records.append(record)
        }
        return records
    }

    public func apply(_ changes: [StoreChange]) async throws {
        _ = try await connection.query("BEGIN IMMEDIATE")
        do {
            for change in changes {
                switch change {
                case .put(let record):
                    _ = try await connection.query(
                        """
                        INSERT INTO resources (kind, id, value, created_index, modified_index) VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT (kind, id) DO UPDATE SET value = excluded.value,
                            modified_index = excluded.modified_index
                        """,
                        [
                            .text(record.kind.rawValue), .text(record.id), .text(record.value.serialized()),
                            .integer(record.createdIndex), .integer(record.modifiedIndex),
                        ])
                case .delete(let kind, let id):
                    _ = try await connection.query(
                        "DELETE FROM resources WHERE kind = ? AND id = ?", [.text(kind.rawValue), .text(id)])
                }
            }
            _ = try await connection.query("COMMIT")
        } catch {
            _ = try? await connection.query("ROLLBACK")
            throw error
        }
    }

    public func metadata(_ key: String) async throws -> String? {
        try await connection.query("SELECT value FROM meta WHERE key = ?", [.text(key)]).first?.column("value")?.string
    }

    public func setMetadata(_ key: String, _ value: String) async throws {
        _ = try await connection.query(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [.text(key), .text(value)])
    }

    /// A single process owns the file; nothing changes behind its back.
    public func watch(
        _ onChange: @escaping @Sendable ([StoredResource]) async -> Void,
        onFailure: @escaping @Sendable (any Error) async -> Void
    ) async throws {
        while !Task.isCancelled {
            try await Task.sleep(for: .seconds(3600))
        }
    }

    public func close() async throws {
        try await connection.close()
    }
}

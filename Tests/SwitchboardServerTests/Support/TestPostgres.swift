import Foundation
import Logging
import PostgresNIO
import SwitchboardCore

/// The PostgreSQL server `scripts/test.sh` starts for the cluster tests (`SWITCHBOARD_TEST_POSTGRES`).
enum TestPostgres {
    static let server: PostgresDSN? = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_POSTGRES"].flatMap {
        try? PostgresDSN($0)
    }

    /// Whether the server is there; the cluster suites are skipped (and say so) without it.
    static var isAvailable: Bool { server != nil }

    struct Missing: Error, CustomStringConvertible {
        var description: String { "SWITCHBOARD_TEST_POSTGRES is not set: run the tests with scripts/test.sh" }
    }

    /// A new, empty database on the test server, so that tests running at once share nothing.
    static func freshDatabase() async throws -> PostgresDSN {
        guard let server else { throw Missing() }
        let name = "sb_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await run(on: server, "CREATE DATABASE \(name)")
        var dsn = server
        dsn.database = name
        return dsn
    }

    struct ControlFailed: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs the test server's `pg_ctl` with `arguments` (`stop -m fast`, `start`, ...) as the
    /// user that owns the server, and waits for it.
    static func pgCtl(_ arguments: [String]) async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let pgCtl = environment["SWITCHBOARD_TEST_PG_CTL"], let data = environment["SWITCHBOARD_TEST_PG_DATA"]
        else { throw Missing() }
        let user = environment["SWITCHBOARD_TEST_PG_USER"] ?? ""
        let command = (user.isEmpty ? [] : ["/usr/sbin/runuser", "-u", user, "--"]) + [pgCtl, "-D", data, "-w"]
        let all = command + arguments
        let result = try await Spawned.finish(all[0], Array(all.dropFirst()))
        guard result.status == 0 else {
            throw ControlFailed(description: "pg_ctl \(arguments.joined(separator: " ")): \(result.stderr)")
        }
    }

    /// An outage of one test's database: new connections are refused and the open ones closed.
    static func refuseConnections(to dsn: PostgresDSN) async throws {
        guard let server else { throw Missing() }
        try await run(on: server, "ALTER DATABASE \(dsn.database) ALLOW_CONNECTIONS false")
        try await run(
            on: server, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '\(dsn.database)'")
    }

    /// The end of that outage.
    static func allowConnections(to dsn: PostgresDSN) async throws {
        guard let server else { throw Missing() }
        try await run(on: server, "ALTER DATABASE \(dsn.database) ALLOW_CONNECTIONS true")
    }

    /// Runs one statement (unbound text: only for statements the tests write themselves).
    static func run(on dsn: PostgresDSN, _ statement: String) async throws {
        _ = try await withClient(dsn) { client in
            try await client.query(PostgresQuery(unsafeSQL: statement))
        }
    }

    /// The single text value `query` returns, if any.
    static func value(on dsn: PostgresDSN, _ statement: String) async throws -> String? {
        try await withClient(dsn) { client in
            var found: String?
            for try await value in try await client.query(PostgresQuery(unsafeSQL: statement)).decode(String.self) {
                found = value
            }
            return found
        }
    }

    private static func withClient<T: Sendable>(
        _ dsn: PostgresDSN, _ body: @Sendable (PostgresClient) async throws -> T
    ) async throws -> T {
        let configuration = PostgresClient.Configuration(
            host: dsn.host, port: dsn.port, username: dsn.user, password: dsn.password, database: dsn.database,
            tls: .disable)
        var logger = Logger(label: "test-postgres")
        logger.logLevel = .critical
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                await client.run()
                return nil
            }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }
}

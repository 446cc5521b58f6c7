import Testing

@testable import SwitchboardCore

@Suite struct PostgresDSNTests {
    @Test func partsAndDefaults() throws {
        let full = try PostgresDSN("postgres://sw%40x:p%3Ass@db.internal:6543/gateway?sslmode=verify-full")
        #expect(full.user == "sw@x" && full.password == "p:ss" && full.host == "db.internal" && full.port == 6543)
        #expect(full.database == "gateway" && full.sslMode == .verifyFull)
        #expect(full.redacted == "postgres://sw@x:***@db.internal:6543/gateway?sslmode=verify-full")
        let short = try PostgresDSN("postgresql://switchboard@127.0.0.1")
        #expect(short.port == 5432 && short.database == "switchboard" && short.password == nil)
        #expect(short.sslMode == .disable)
        let v6 = try PostgresDSN("postgres://u@[::1]:5433/d")
        #expect(v6.host == "::1" && v6.port == 5433)
    }

    @Test(arguments: [
        ("postgres://127.0.0.1/db", "needs user@host"),
        ("postgres://u@127.0.0.1:99999/db", "port \"99999\""),
        ("postgres://u@h/db?sslmode=prefer", "sslmode \"prefer\""),
        ("postgres://u@h/db?connect_timeout=3", "unknown parameter \"connect_timeout\""),
        ("postgres://:pw@h/db", "no user name"),
    ])
    func namesWhatIsWrong(text: String, message: String) {
        #expect {
            try PostgresDSN(text)
        } throws: { error in
            "\(error)".contains(message) && !"\(error)".contains("pw@")
        }
    }

    @Test func aConfigFileTakesAPostgresStoreWithVariables() throws {
        let config = try GatewayConfig.parse(
            "store: postgres://switchboard:${PGPASSWORD}@127.0.0.1:5432/switchboard",
            environment: ["PGPASSWORD": "s3cret"])
        #expect(config.store == .postgres(try PostgresDSN("postgres://switchboard:s3cret@127.0.0.1:5432/switchboard")))
        #expect {
            try GatewayConfig.parse("store: postgres://u:pw@h:0/db")
        } throws: { error in
            "\(error)".contains("port \"0\"") && !"\(error)".contains("pw")
        }
    }
}

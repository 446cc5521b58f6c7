import Testing

@testable import SwitchboardCore

@Suite struct GatewayConfigTests {
    @Test func emptyConfigGivesLaptopDefaults() throws {
        let config = try GatewayConfig.parse("")
        #expect(config.proxyListen == [ListenAddress(host: "0.0.0.0", port: 9080)])
        #expect(config.adminListen == ListenAddress(host: "127.0.0.1", port: 9180))
        #expect(config.adminListen.isLoopback)
        #expect(config.adminKeys.isEmpty)
        #expect(config.store == .sqlite(path: "./switchboard.db"))
        #expect(config.accessLog == .stdout)
    }

    @Test func fullExampleWithEnvironment() throws {
        let text = """
            proxy:
              listen: [0.0.0.0:9080, "[::1]:9081"]
            admin:
              listen: 127.0.0.1:9180
              keys:
                - { name: admin, key: "${SWITCHBOARD_ADMIN_KEY}", role: admin }
                - { name: ro, key: "${RO_KEY:-read-only}", role: viewer }
            store: file:./routes.yaml
            access_log:
              path: "-"
              format: '$remote_addr $status'
              buffer_size: 65536
            """
        let config = try GatewayConfig.parse(text, environment: ["SWITCHBOARD_ADMIN_KEY": "s3cret"])
        #expect(config.proxyListen.map(\.description) == ["0.0.0.0:9080", "[::1]:9081"])
        #expect(config.adminKeys.map(\.key) == ["s3cret", "read-only"])
        #expect(config.adminKeys.map(\.role) == [.admin, .viewer])
        #expect(config.store == .file(path: "./routes.yaml"))
        #expect(config.accessLogFormat == "$remote_addr $status")
        #expect(config.accessLogBufferSize == 65536)
        #expect(throws: GatewayConfig.Error.self) { try GatewayConfig.parse("access_log: {buffer_size: 10}") }
    }

    /// A TLS listener is a mapping beside plain `host:port` strings; the keyring holds 16- or
    /// 32-byte keys in hexadecimal, from the environment as everywhere, and a bad one is named
    /// without being echoed.
    @Test func tlsListenersAndTheKeyring() throws {
        let text = """
            proxy:
              listen: ["0.0.0.0:9080", {listen: "0.0.0.0:9443", tls: true}]
            data_encryption:
              keyring: ["${NEW_KEY}", "00112233445566778899aabbccddeeff"]
            """
        let config = try GatewayConfig.parse(text, environment: ["NEW_KEY": String(repeating: "ab", count: 32)])
        #expect(
            config.proxyListen == [
                ListenAddress(host: "0.0.0.0", port: 9080), ListenAddress(host: "0.0.0.0", port: 9443, tls: true),
            ])
        #expect(config.dataEncryptionKeys.map(\.count) == [32, 16])
        #expect(config.environmentNames == ["NEW_KEY"], "never resolvable by $env:// references")
        #expect(config.dataEncryptionKeys[1].first == 0x00 && config.dataEncryptionKeys[1].last == 0xff)
        #expect(
            throws: GatewayConfig.Error("config: data_encryption.keyring[0] is not 32 or 64 hexadecimal characters")
        ) {
            try GatewayConfig.parse("data_encryption: {keyring: [\"secret-but-not-hex\"]}")
        }
    }

    @Test(
        arguments: [
            ("proxi:\n  listen: 1", "config: additional properties forbidden, found proxi"),
            ("proxy:\n  listen: 1.2.3.4:99999", "config: proxy.listen \"1.2.3.4:99999\" is not a valid host:port"),
            ("admin:\n  listen: nohost:abc", "config: admin.listen \"nohost:abc\" is not a valid host:port"),
            (
                "admin:\n  keys: [{key: \"${UNSET_VAR}\"}]",
                "config: admin.keys[0].key is empty (is the environment variable it names set?)"
            ),
            (
                "admin:\n  keys: [{key: a, role: root}]",
                "config: property \"admin\" validation failed: property \"keys\" validation failed: failed to validate item 1: property \"role\" validation failed: matches none of the enum values"
            ),
            ("store: mysql://x", "config: store \"mysql://x\" is not sqlite:PATH, file:PATH or postgres://..."),
            (
                "access_log:\n  path: [1]",
                "config: property \"access_log\" validation failed: property \"path\" validation failed: wrong type: expected string, got table"
            ),
            ("a: [", nil),
        ] as [(String, String?)])
    func badConfigsSayWhatIsWrong(text: String, message: String?) {
        do {
            _ = try GatewayConfig.parse(text)
            Issue.record("expected an error for \(text)")
        } catch {
            if let message {
                #expect(error.message == message)
            } else {
                #expect(error.message.hasPrefix("config: invalid YAML"))
            }
        }
    }

    @Test func expandsVariablesWithDefaults() throws {
        let env = ["A": "1", "EMPTY": ""]
        #expect(try YAMLDocument.expand("x${A}y", environment: env) == "x1y")
        #expect(try YAMLDocument.expand("${B:-dflt}", environment: env) == "dflt")
        #expect(try YAMLDocument.expand("${EMPTY:-dflt}", environment: env) == "dflt")
        #expect(try YAMLDocument.expand("${B}", environment: env) == "")
        #expect(throws: GatewayConfig.Error.self) { try YAMLDocument.expand("${A", environment: env) }
    }

    @Test func listenAddresses() {
        #expect(ListenAddress("9080") == ListenAddress(host: "0.0.0.0", port: 9080))
        #expect(ListenAddress(":9080") == ListenAddress(host: "0.0.0.0", port: 9080))
        #expect(ListenAddress("localhost:1")?.isLoopback == true)
        #expect(ListenAddress("[::1]:0") == ListenAddress(host: "::1", port: 0))
        #expect(ListenAddress("1.2.3:80") == nil)
        #expect(ListenAddress("host:-1") == nil)
    }

    @Test func logFormatCompilesAndRejectsUnknownVariables() throws {
        let format = try LogFormat(#"$remote_addr - "$request_line" ${status}ms $http_x_y $llm_model"#)
        #expect(
            format.parts == [
                .variable("remote_addr"), .literal(" - \""), .variable("request_line"), .literal("\" "),
                .variable("status"), .literal("ms "), .variable("http_x_y"), .literal(" "), .variable("llm_model"),
            ])
        #expect(throws: LogFormat.UnknownVariable.self) { try LogFormat("$remote_adr") }
    }
}

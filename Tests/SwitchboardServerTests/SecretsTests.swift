import Foundation
import NIOHTTP1
import SwitchboardCore
import Testing

/// Secrets never in clear where they do not belong: the Admin API masks them, the store seals
/// them with the keyring, and `$env://` / `$secret://` references keep them out of the store.
@Suite struct SecretsTests {
    static let keyA = String(repeating: "a1", count: 16)
    static let keyB = String(repeating: "b2", count: 32)

    /// The `error_msg` of a 400, else `nil`.
    static func refusal(_ result: HTTPResult) -> String? {
        result.status == 400 ? result.json["error_msg"]?.stringValue : nil
    }

    func authorization(_ llm: FakeLLM) -> String? {
        llm.requests.last?.headers[.authorization]
    }

    func route(_ f: AIFixture, auth: String) -> String {
        """
        {"uri":"/anything","plugins":{"ai-proxy-multi":{"instances":[
          {"name":"a","provider":"openai","weight":1,"auth":{"header":{"Authorization":"\(auth)"}},
           "override":{"endpoint":"\(f.a.endpoint)"}}]}}}
        """
    }

    /// GET shows the mask; GET → edit → PUT keeps the stored key; the echo of a write is
    /// masked too.
    @Test func theAdminAPIMasksSecretsAndAMaskSentBackKeepsThem() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            f.a.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "m")) }
            let put = try await f.gw.admin(.PUT, "/routes/ai", route(f, auth: "Bearer sk-live-123"))
            #expect(put.status == 201)
            #expect(!put.body.contains("sk-live-123"))
            let got = try await f.gw.admin(.GET, "/routes/ai")
            #expect(!got.body.contains("sk-live-123"))
            let shown = got.json["value"]?["plugins"]?["ai-proxy-multi"]?["instances"]?[0]?["auth"]?["header"]?[
                "Authorization"]
            #expect(shown == .string(SensitiveFields.mask))

            var edited = try #require(got.json["value"])
            edited["desc"] = "edited"
            edited["create_time"] = nil
            edited["update_time"] = nil
            let replaced = try await f.gw.admin(.PUT, "/routes/ai", edited.serialized())
            #expect(replaced.status == 200, "\(replaced.body)")
            #expect(try await f.chat().status == 200)
            #expect(authorization(f.a) == "Bearer sk-live-123", "the mask kept the stored key")

            let list = try await f.gw.admin(.GET, "/routes")
            #expect(!list.body.contains("sk-live-123"))

            let consumer = #"{"username":"jack","plugins":{"key-auth":{"key":"jack-secret-key"}}}"#
            let written = try await f.gw.admin(.PUT, "/consumers", consumer)
            #expect(written.status == 201 && !written.body.contains("jack-secret-key"))
            let credential = #"{"plugins":{"key-auth":{"key":"cred-secret-key"}}}"#
            let cred = try await f.gw.admin(.PUT, "/consumers/jack/credentials/c1", credential)
            #expect(cred.status == 201 && !cred.body.contains("cred-secret-key"))
            #expect(!(try await f.gw.admin(.GET, "/consumers/jack/credentials/c1")).body.contains("cred-secret-key"))

            // A mask where nothing is stored cannot be kept.
            let fresh = route(f, auth: SensitiveFields.mask).replacingOccurrences(
                of: "\"name\":\"a\"", with: "\"name\":\"new\"")
            let refused = try await f.gw.admin(.PUT, "/routes/other", fresh)
            #expect(refused.status == 400)
            #expect(refused.json["error_msg"]?.stringValue?.contains("is the mask") == true)
        }
    }

    /// `$env://NAME` is resolved when the configuration is compiled and shown as written; an
    /// unset variable is refused with the reference named.
    @Test func environmentReferencesAreResolvedAndShownAsWritten() async throws {
        let name = "SWITCHBOARD_TEST_KEY_\(UInt32.random(in: 0...UInt32.max))"
        setenv(name, "Bearer sk-from-env", 1)
        setenv(name + "_ADMIN", "the-admin-key", 1)
        defer {
            unsetenv(name)
            unsetenv(name + "_ADMIN")
        }
        try await withFixture { fx in
            let f = try await fx.own(
                AIFixture.start { config, _ in
                    config.environmentNames = GatewayConfig.referencedVariables(
                        "admin: {keys: [{key: \"${\(name)_ADMIN}\"}]}")
                })
            f.a.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "m")) }
            #expect(try await f.gw.admin(.PUT, "/routes/ai", route(f, auth: "$env://\(name)")).status == 201)
            #expect(try await f.chat().status == 200)
            #expect(authorization(f.a) == "Bearer sk-from-env")
            #expect(try await f.gw.admin(.GET, "/routes/ai").body.contains("$env://\(name)"))

            let sealedLooking = try await f.gw.admin(.PUT, "/routes/ai", route(f, auth: "$aes-gcm$AAAA"))
            #expect(sealedLooking.status == 400, "a client value that looks sealed would be stored in clear")

            let missing = try await f.gw.admin(.PUT, "/routes/ai", route(f, auth: "$env://\(name)_UNSET"))
            #expect(
                Self.refusal(missing)
                    == "secret reference $env://\(name)_UNSET could not be resolved: environment variable \(name)_UNSET is not set"
            )

            // Variables the gateway's own configuration file reads (`${NAME}`: the keyring, the
            // admin keys) cannot be referenced, so no route can be made to echo them.
            let echo = #"{"uri":"/leak","plugins":{"mocking":{"response_example":"$env://\#(name)_ADMIN"}}}"#
            #expect(
                Self.refusal(try await f.gw.admin(.PUT, "/routes/leak", echo))
                    == "secret reference $env://\(name)_ADMIN could not be resolved: environment variable \(name)_ADMIN is read by the gateway's own configuration file"
            )
        }
    }

    /// A global rule that cannot be put in force at start (its reference has no value) refuses
    /// every request rather than letting them through without it.
    @Test func aGlobalRuleOutOfForceFailsClosed() async throws {
        let name = "SWITCHBOARD_TEST_GLOBAL_\(UInt32.random(in: 0...UInt32.max))"
        setenv(name, "x-team-key", 1)
        try await withFixture { fx in
            let directory = TestGateway.makeDirectory()
            var gw = try await TestGateway.start(directory: directory)
            let route = #"{"uri":"/hello","plugins":{"mocking":{"response_example":"hi"}}}"#
            #expect(try await gw.admin(.PUT, "/routes/hello", route).status == 201)
            let consumer = #"{"username":"jack","plugins":{"key-auth":{"key":"jk"}}}"#
            #expect(try await gw.admin(.PUT, "/consumers", consumer).status == 201)
            // The header that carries the key comes from the environment.
            let rule = #"{"plugins":{"key-auth":{"header":"$env://\#(name)"}}}"#
            #expect(try await gw.admin(.PUT, "/global_rules/auth", rule).status == 201)
            #expect(try await gw.proxy(.GET, "/hello", headers: [("x-team-key", "jk")]).status == 200)
            #expect(try await gw.proxy(.GET, "/hello").status == 401)
            await gw.stop()

            unsetenv(name)
            gw = fx.own(try await TestGateway.start(directory: directory))
            let refused = try await gw.proxy(.GET, "/hello", headers: [("x-team-key", "jk")])
            #expect(refused.status == 503)
            #expect(refused.json["error_msg"] == "global rule auth is not in force; see the gateway's log")
            #expect(try await gw.proxy(.GET, "/hello").status == 503)
        }
    }

    /// `$secret://vault/<id>/<path>/<key>` reads a KV v2 secret with the Vault object's token;
    /// the token itself is masked; a missing key is refused with the reference named.
    @Test func vaultReferencesAreReadFromTheSecretsObject() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let vault = try await fx.own(FakeLLM.start(name: "vault"))
            vault.reply { seen in
                guard seen.headers[.init("X-Vault-Token")!] == "vault-root-token" else {
                    return .json(status: 403, body: #"{"errors":["permission denied"]}"#)
                }
                guard seen.path == "/v1/kv/data/llm/openai" else { return .json(status: 404, body: #"{"errors":[]}"#) }
                return .json(
                    status: 200, body: #"{"data":{"data":{"key":"Bearer sk-from-vault"},"metadata":{"version":1}}}"#)
            }
            f.a.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "m")) }
            let secret = #"{"uri":"\#(vault.endpoint)","prefix":"kv/data","token":"vault-root-token"}"#
            let put = try await f.gw.admin(.PUT, "/secrets/vault/1", secret)
            #expect(put.status == 201, "\(put.body)")
            #expect(put.json["key"] == "/apisix/secrets/vault/1")
            #expect(!put.body.contains("vault-root-token"))
            #expect(!(try await f.gw.admin(.GET, "/secrets/vault/1")).body.contains("vault-root-token"))

            let reference = "$secret://vault/1/llm/openai/key"
            #expect(try await f.gw.admin(.PUT, "/routes/ai", route(f, auth: reference)).status == 201)
            #expect(try await f.chat().status == 200)
            #expect(authorization(f.a) == "Bearer sk-from-vault")

            let missing = try await f.gw.admin(.PUT, "/routes/ai", route(f, auth: "$secret://vault/1/llm/other/key"))
            #expect(missing.status == 400)
            let message = missing.json["error_msg"]?.stringValue ?? ""
            #expect(message.hasPrefix("secret reference $secret://vault/1/llm/other/key could not be resolved"))
            #expect(message.contains("404"))
            #expect(try await f.gw.admin(.PUT, "/secrets/other/1", secret).status == 400)

            // The route still uses the secrets object: it cannot be deleted, nor changed so that
            // the route's reference no longer resolves.
            let inUse = try await f.gw.admin(.DELETE, "/secrets/vault/1")
            #expect(inUse.status == 400)
            #expect(inUse.json["error_msg"] == "can not delete this secret, route [ai] is still using it now")
            let wrongToken = #"{"uri":"\#(vault.endpoint)","prefix":"kv/data","token":"wrong"}"#
            let broken = try await f.gw.admin(.PUT, "/secrets/vault/1", wrongToken)
            #expect(broken.status == 400)
            #expect(broken.json["error_msg"]?.stringValue?.contains("this secrets object is in use") == true)
            #expect(try await f.chat().status == 200)
            #expect(authorization(f.a) == "Bearer sk-from-vault")
        }
    }

    /// Every file of the store, as `strings` would see it.
    func storeBytes(_ directory: URL) -> String {
        var text = ""
        for suffix in ["", "-wal", "-shm"] {
            let url = directory.appendingPathComponent("switchboard.db" + suffix)
            if let data = try? Data(contentsOf: url) { text += String(decoding: data, as: UTF8.self) }
        }
        return text
    }

    func permissions(_ directory: URL) -> [Int] {
        ["", "-wal", "-shm"].compactMap {
            let path = directory.appendingPathComponent("switchboard.db" + $0).path
            return (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        }
    }

    /// With a keyring, no provider or consumer key is in the store's files (database, WAL,
    /// shared memory), which only their owner can read; a store written in clear is sealed at
    /// the next start; a rotated keyring (new key first, old one kept) reads and re-seals it.
    @Test func secretsAreSealedAtRestAndTheKeyringRotates() async throws {
        try await withFixture { fx in
            let a = try await fx.own(FakeLLM.start(name: "a"))
            a.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "m")) }
            let directory = TestGateway.makeDirectory()
            let route = """
                {"uri":"/anything","plugins":{"ai-proxy-multi":{"instances":[
                  {"name":"a","provider":"openai","weight":1,"auth":{"header":{"Authorization":"Bearer sk-provider-777"}},
                   "override":{"endpoint":"\(a.endpoint)"}}]}}}
                """
            func start(_ keyring: [String]) async throws -> TestGateway {
                try await TestGateway.start(directory: directory) { config, _ in
                    config.dataEncryptionKeys = keyring.compactMap { GatewayConfig.hexBytes($0) }
                }
            }
            func chat(_ gw: TestGateway) async throws -> Int {
                try await gw.proxy(
                    .POST, "/anything", body: #"{"messages":[{"role":"user","content":"hi"}]}"#,
                    headers: [("Content-Type", "application/json")]
                ).status
            }

            // Written before encryption was on: in clear.
            var gw = try await start([])
            #expect(try await gw.admin(.PUT, "/routes/ai", route).status == 201)
            let consumer = #"{"username":"jack","plugins":{"key-auth":{"key":"consumer-key-555"}}}"#
            #expect(try await gw.admin(.PUT, "/consumers", consumer).status == 201)
            #expect(permissions(directory) == [0o600, 0o600, 0o600], "database, WAL and shared memory")
            await gw.stop()
            #expect(storeBytes(directory).contains("sk-provider-777"))

            // Turned on: sealed at start, served as before.
            gw = try await start([Self.keyA])
            #expect(try await chat(gw) == 200)
            #expect(a.requests.last?.headers[.authorization] == "Bearer sk-provider-777")
            let credential = #"{"plugins":{"key-auth":{"key":"credential-key-666"}}}"#
            #expect(try await gw.admin(.PUT, "/consumers/jack/credentials/c1", credential).status == 201)
            #expect(!storeBytes(directory).contains("credential-key-666"), "the WAL holds it sealed")
            await gw.stop()
            var bytes = storeBytes(directory)
            for secret in ["sk-provider-777", "consumer-key-555", "credential-key-666"] {
                #expect(!bytes.contains(secret), "\(secret) is in the store's files")
            }
            #expect(bytes.contains("$aes-gcm$"))

            // Rotated: the new key first, the old one kept to read what it sealed.
            gw = try await start([Self.keyB, Self.keyA])
            #expect(try await chat(gw) == 200)
            #expect(a.requests.last?.headers[.authorization] == "Bearer sk-provider-777")
            await gw.stop()
            // Everything was sealed anew with the new key: the old one can go.
            gw = try await start([Self.keyB])
            #expect(try await chat(gw) == 200)
            #expect(a.requests.last?.headers[.authorization] == "Bearer sk-provider-777")
            await gw.stop()
            bytes = storeBytes(directory)
            #expect(!bytes.contains("sk-provider-777"))

            // A keyring that opens nothing: the route is left out rather than used with a
            // sealed blob as its key.
            gw = try await start([Self.keyA])
            #expect(try await chat(gw) == 404)
            await gw.stop()
        }
    }
}

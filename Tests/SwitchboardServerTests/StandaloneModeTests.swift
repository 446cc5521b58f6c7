import Foundation
import NIOHTTP1
import SwitchboardCore
import Testing

@Suite struct StandaloneModeTests {
    static let initial = """
        routes:
          - id: hello
            uri: /hello
            plugins:
              mocking: { response_example: "from file" }
          - id: secure
            uri: /secure
            plugins:
              key-auth: {}
              mocking: { response_example: "secret" }
        consumers:
          - username: jack
          - id: jack/credentials/one
            plugins:
              key-auth: { key: jack-key }
        #END
        """

    func write(_ text: String, to url: URL) throws {
        // Write to a temporary file and rename, as editors and deploy tools do, so the gateway
        // never sees a half-written file.
        let temp = url.appendingPathExtension("tmp")
        try text.write(to: temp, atomically: false, encoding: .utf8)
        #expect(rename(temp.path, url.path) == 0)
    }

    @Test func servesTheFileAndReloadsItWhenItChanges() async throws {
        try await withFixture { fx in
            let directory = TestGateway.makeDirectory()
            let file = directory.appendingPathComponent("routes.yaml")
            try write(Self.initial, to: file)
            let gw = try await fx.own(
                TestGateway.start(directory: directory) { config, _ in config.store = .file(path: file.path)
                })

            #expect((try await gw.proxy(.GET, "/hello")).body == "from file")
            #expect((try await gw.proxy(.GET, "/secure", headers: [("apikey", "jack-key")])).body == "secret")
            #expect((try await gw.proxy(.GET, "/secure")).status == 401)

            let listed = try await gw.admin(.GET, "/routes")
            #expect(listed.json["total"] == 2)
            #expect((try await gw.admin(.GET, "/consumers/jack/credentials/one")).status == 200)
            let refused = try await gw.admin(.PUT, "/routes/x", #"{"uri":"/x","plugins":{}}"#)
            #expect(refused.status == 405)
            #expect(refused.json["error_msg"]?.stringValue?.contains("read-only") == true)
            #expect((try await gw.admin(.DELETE, "/routes/hello")).status == 405)

            let edited = Self.initial.replacingOccurrences(of: "from file", with: "edited")
                .replacingOccurrences(
                    of: "consumers:",
                    with: "  - {id: new, uri: /new, plugins: {mocking: {response_example: new}}}\nconsumers:")
            try write(edited, to: file)
            #expect(try await eventually { try await gw.proxy(.GET, "/hello").body == "edited" })
            #expect((try await gw.proxy(.GET, "/new")).body == "new")

            // A broken edit is refused and the last good configuration stays in force.
            try write("routes:\n  - id: bad\n    uri: /bad\n    plugins: {nope: {}}\n", to: file)
            #expect(await eventually { await gw.gateway.manager.rejectedReloads == 1 })
            #expect((try await gw.proxy(.GET, "/bad")).status == 404)
            #expect((try await gw.proxy(.GET, "/hello")).body == "edited")
            try write("routes: [\n", to: file)
            #expect(await eventually { await gw.gateway.manager.rejectedReloads == 2 })
            #expect((try await gw.proxy(.GET, "/hello")).body == "edited")
        }
    }

    @Test func anInvalidFileIsAStartupError() async throws {
        let directory = TestGateway.makeDirectory()
        let file = directory.appendingPathComponent("routes.yaml")
        try write("routes:\n  - id: r\n    uri: /r\n    plugins: {nope: {}}\n", to: file)
        await #expect(throws: (any Error).self) {
            _ = try await TestGateway.start(directory: directory) { config, _ in config.store = .file(path: file.path) }
        }
        do {
            _ = try await TestGateway.start(directory: directory) { config, _ in config.store = .file(path: file.path) }
        } catch {
            #expect("\(error)".contains("route r in file:\(file.path) is invalid: unknown plugin [nope]"))
        }
    }
}

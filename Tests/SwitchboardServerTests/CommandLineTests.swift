import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SwitchboardCore
import Synchronization
import Testing

/// Runs the real `switchboard` binary, as users and init systems do.
@Suite(.serialized) struct CommandLineTests {
    static let binary: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.lastPathComponent != "Tests" { url.deleteLastPathComponent() }
        return url.deletingLastPathComponent().appendingPathComponent(".build/debug/switchboard")
    }()

    struct Finished {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// A running `switchboard` process whose output goes to files.
    final class Running: Stoppable {
        let child: Spawned
        let stderrURL: URL

        init(_ arguments: [String], directory: URL, environment: [String: String] = [:]) throws {
            stderrURL = directory.appendingPathComponent("stderr-\(UUID().uuidString).log")
            child = try Spawned(
                CommandLineTests.binary.path, arguments, directory: directory.path, environment: environment,
                stderr: stderrURL.path)
        }

        var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

        private let reaped = Mutex(false)

        /// Signals the process and waits for its exit (once: a reaped pid may be reused).
        func kill(_ signal: Int32) async {
            guard !reaped.withLock({ $0 }) else { return }
            child.signal(signal)
            _ = await onThread { self.child.wait() }
            reaped.withLock { $0 = true }
        }

        func stop() async { await kill(SIGTERM) }

        /// Waits for an exit the test caused itself; the exit status.
        func exitStatus() async -> Int32 {
            let status = await onThread { self.child.wait() }
            reaped.withLock { $0 = true }
            return status
        }
    }

    /// Runs the binary to completion (waiting on a thread of its own, see ``onThread(_:)``).
    static func run(_ arguments: [String], directory: URL) async throws -> Finished {
        let path = binary.path
        let result = try await Spawned.finish(path, arguments, directory: directory.path)
        return Finished(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }

    /// Ports handed out in this test run: never the same one twice.
    private static let handedOut = Mutex<Set<Int>>([])

    /// A free loopback port for a child process to listen on, taken below the kernel's
    /// ephemeral range: no socket bound to port 0 and no outgoing connection of another test can
    /// be given it between this check and the child's bind. (Binding port 0 here and releasing
    /// it raced with every such socket: "Address already in use" in the child, once in CI-like
    /// runs.)
    static func freePort() throws -> Int {
        let ephemeralLow =
            (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
            .flatMap { $0.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } } ?? 32768
        let range = max(1024, ephemeralLow - 12000)..<max(1025, ephemeralLow)
        for _ in 0..<1000 {
            let port = Int.random(in: range)
            guard handedOut.withLock({ $0.insert(port).inserted }), canBind(port) else { continue }
            return port
        }
        throw POSIXError(.EADDRINUSE)
    }

    private static func canBind(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// Waits until the Admin API answers (the process has loaded its store and is listening).
    static func waitForAdmin(_ port: Int, key: String) async -> Bool {
        await eventually {
            (try? await HTTP.send(.GET, "http://127.0.0.1:\(port)/apisix/admin/routes", headers: [("X-API-KEY", key)]))?
                .status == 200
        }
    }

    @Test func versionAndHelp() async throws {
        let directory = TestGateway.makeDirectory()
        let version = try await Self.run(["--version"], directory: directory)
        #expect(version.status == 0 && version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0.1.0")
        for command in [["--help"], ["serve", "--help"], ["validate", "--help"]] {
            let help = try await Self.run(command, directory: directory)
            #expect(help.status == 0 && help.stdout.contains("USAGE"), "\(command)")
        }
    }

    @Test func validateSaysWhatIsWrong() async throws {
        let directory = TestGateway.makeDirectory()
        let good = directory.appendingPathComponent("good.yaml")
        try "proxy:\n  listen: 127.0.0.1:9080\nstore: file:routes.yaml\n".write(
            to: good, atomically: true, encoding: .utf8)
        try "routes:\n  - {id: a, uri: /a, plugins: {mocking: {response_example: x}}}\n".write(
            to: directory.appendingPathComponent("routes.yaml"), atomically: true, encoding: .utf8)
        let ok = try await Self.run(["validate", "--config", good.path], directory: directory)
        #expect(ok.status == 0)
        #expect(ok.stdout.contains("configuration is valid"))

        let cases: [(String, String)] = [
            ("proxy:\n  listn: 1\n", "additional properties forbidden, found listn"),
            ("admin:\n  listen: 127.0.0.1:70000\n", "admin.listen \"127.0.0.1:70000\" is not a valid host:port"),
            ("access_log:\n  format: '$nope'\n", "unknown variable $nope in access log format"),
            ("store: file:missing.yaml\n", "cannot read store file:missing.yaml"),
        ]
        for (text, message) in cases {
            let bad = directory.appendingPathComponent("bad.yaml")
            try text.write(to: bad, atomically: true, encoding: .utf8)
            let result = try await Self.run(["validate", "--config", bad.path], directory: directory)
            #expect(result.status != 0, "\(text)")
            #expect(result.stderr.contains(message), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        }
        let missing = try await Self.run(["validate", "--config", "/nonexistent.yaml"], directory: directory)
        #expect(missing.status != 0 && missing.stderr.contains("cannot read config file /nonexistent.yaml"))
    }

    /// A directory with a config file `c.yaml` for `serve`: proxy and admin on free loopback
    /// ports (`adminKeys` appended to the admin block), no access log.
    static func served(adminKeys: String, extra: String = "") throws -> (
        directory: URL, config: URL, proxyPort: Int, adminPort: Int
    ) {
        let directory = TestGateway.makeDirectory()
        let proxyPort = try freePort()
        let adminPort = try freePort()
        let config = directory.appendingPathComponent("c.yaml")
        try """
        proxy: {listen: "127.0.0.1:\(proxyPort)"}
        admin: {listen: "127.0.0.1:\(adminPort)"\(adminKeys)}
        control: {listen: "127.0.0.1:0"}
        prometheus: {listen: "127.0.0.1:0"}
        access_log: {path: "off"}
        \(extra)
        """.write(to: config, atomically: true, encoding: .utf8)
        return (directory, config, proxyPort, adminPort)
    }

    /// Exactly one line, ending in a newline (what the README promises for startup problems).
    static func isOneLine(_ text: String) -> Bool {
        text.hasSuffix("\n") && text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).count == 1
    }

    @Test func startupProblemsExitWithOneLine() async throws {
        let directory = TestGateway.makeDirectory()
        // A port held by a listening socket of ours (bound to 0, so no other test can take it).
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) }
        }
        #expect(bound == 0 && listen(listener, 1) == 0)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let config = directory.appendingPathComponent("c.yaml")
        try """
        proxy: {listen: "127.0.0.1:\(port)"}
        admin: {listen: "127.0.0.1:\(try Self.freePort())", keys: [{key: k}]}
        control: {enabled: false}
        prometheus: {enabled: false}
        store: sqlite:./s.db
        """.write(to: config, atomically: true, encoding: .utf8)
        let inUse = try await Self.run(["serve", "--config", config.path], directory: directory)
        #expect(inUse.status == 1)
        #expect(inUse.stderr.hasPrefix("switchboard: cannot listen on 127.0.0.1:\(port)"), "\(inUse.stderr)")
        #expect(Self.isOneLine(inUse.stderr), "\(inUse.stderr)")

        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("dir.db"), withIntermediateDirectories: true)
        try
            "store: sqlite:./dir.db\nadmin: {keys: [{key: k}]}\ncontrol: {enabled: false}\nprometheus: {enabled: false}\n"
            .write(
                to: config, atomically: true, encoding: .utf8)
        let unreadable = try await Self.run(["serve", "--config", config.path], directory: directory)
        #expect(unreadable.status == 1)
        #expect(unreadable.stderr == "switchboard: cannot open store sqlite:./dir.db: it is a directory\n")

        try "proxy: {listen: [1, 2]}\nbogus: 1\n".write(to: config, atomically: true, encoding: .utf8)
        let unknown = try await Self.run(["serve", "--config", config.path], directory: directory)
        #expect(unknown.status == 1)
        #expect(unknown.stderr.hasPrefix("switchboard: ") && unknown.stderr.contains("found bogus"))
        #expect(Self.isOneLine(unknown.stderr), "\(unknown.stderr)")
    }

    @Test func survivesKill9AndKeepsItsGeneratedAdminKey() async throws {
        try await withFixture { fx in
            let (directory, config, proxyPort, adminPort) = try Self.served(adminKeys: "")

            let first = fx.own(try Running(["serve", "--config", config.path], directory: directory))
            // The generated key is printed once on stderr; find it there.
            var key = ""
            _ = await eventually {
                key =
                    first.stderr.split(separator: "\n").first { $0.hasPrefix("  ") }?.trimmingCharacters(
                        in: .whitespaces)
                    ?? ""
                return key.count == 64
            }
            #expect(key.count == 64)
            #expect(await Self.waitForAdmin(adminPort, key: key))
            let admin = "http://127.0.0.1:\(adminPort)/apisix/admin"
            let put = try await HTTP.send(
                .PUT, admin + "/routes/k9", body: #"{"uri":"/k9","plugins":{"mocking":{"response_example":"alive"}}}"#,
                headers: [("X-API-KEY", key)])
            #expect(put.status == 201)
            await first.kill(SIGKILL)

            let second = fx.own(try Running(["serve", "--config", config.path], directory: directory))
            #expect(await Self.waitForAdmin(adminPort, key: key))
            #expect(!second.stderr.contains(key))
            let served = try await HTTP.send(.GET, "http://127.0.0.1:\(proxyPort)/k9")
            #expect(served.body == "alive")
            let missing = try await HTTP.send(.GET, admin + "/routes")
            #expect(missing.status == 401)
        }
    }

    /// SIGTERM: the gateway stops accepting, lets the request in flight finish, and exits 0.
    @Test func sigtermFinishesTheRequestInFlightAndExitsZero() async throws {
        try await withFixture { fx in
            let (running, llm, inFlight, proxyPort) = try await Self.drainingWithHeldRequest(fx)
            let exited = Task { await running.exitStatus() }
            // Shutting down: no new connections are accepted, while the request is still held.
            #expect(await eventually { (try? RawClient(port: proxyPort)) == nil })
            llm.openGate()
            let answer = try await inFlight.value
            #expect(answer.status == 200 && answer.json["model"] == "m")
            #expect(await exited.value == 0, "\(running.stderr)")
        }
    }

    /// Starts `switchboard serve` with route `/chat` to `llm`; the proxy port once it serves.
    static func serveChat(
        _ fx: Fixtures, _ llm: FakeLLM, extra: String = ""
    ) async throws -> (Running, proxyPort: Int) {
        let (directory, config, proxyPort, adminPort) = try Self.served(adminKeys: ", keys: [{key: k}]", extra: extra)
        let running = fx.own(try Running(["serve", "--config", config.path], directory: directory))
        try #require(await Self.waitForAdmin(adminPort, key: "k"))
        let route =
            #"{"uri":"/chat","plugins":{"ai-proxy-multi":{"instances":[{"name":"a","provider":"openai","weight":1,"auth":{},"override":{"endpoint":"\#(llm.endpoint)"}}]}}}"#
        let put = try await HTTP.send(
            .PUT, "http://127.0.0.1:\(adminPort)/apisix/admin/routes/chat", body: route, headers: [("X-API-KEY", "k")])
        try #require(put.status == 201)
        return (running, proxyPort)
    }

    /// `switchboard serve` with one chat request held by its upstream (until the gate opens),
    /// then SIGTERM: the process is draining.
    static func drainingWithHeldRequest(
        _ fx: Fixtures
    ) async throws -> (Running, FakeLLM, Task<HTTPResult, any Error>, proxyPort: Int) {
        let llm = try await fx.own(FakeLLM.start(name: "a"))
        llm.reply { _ in .gated(.json(status: 200, body: FakeLLM.completion(model: "m"))) }
        let (running, proxyPort) = try await Self.serveChat(fx, llm)
        let inFlight = Task {
            try await HTTP.send(
                .POST, "http://127.0.0.1:\(proxyPort)/chat", body: mathBody,
                headers: [("Content-Type", "application/json")])
        }
        #expect(await eventually { llm.requests.count == 1 })
        running.child.signal(SIGTERM)
        return (running, llm, inFlight, proxyPort)
    }

    /// At `shutdown.drain_timeout_ms` a stream still open ends with the in-band `shutdown`
    /// error (no `[DONE]`) and the process exits 0.
    @Test func theDrainDeadlineEndsOpenStreamsAndExitsZero() async throws {
        try await withFixture { fx in
            let llm = try await fx.own(FakeLLM.start(name: "a"))
            llm.reply { _ in
                .sse(
                    events: Array(
                        FakeLLM.chatStream(model: "m", words: ["never", " ends"], includeUsage: false).prefix(3)),
                    end: .hang)
            }
            let (running, proxyPort) = try await Self.serveChat(fx, llm, extra: "shutdown: {drain_timeout_ms: 300}")
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(proxyPort)/chat")
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: streamBody))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            var iterator = response.body.makeAsyncIterator()
            var received = ""
            while !received.contains("ends"), let chunk = try await iterator.next() {
                received += String(buffer: chunk)
            }
            running.child.signal(SIGTERM)
            let exited = Task { await running.exitStatus() }
            while let chunk = try await iterator.next() { received += String(buffer: chunk) }
            #expect(dataLines(received).last?.contains(#""code":"shutdown""#) == true, "\(received)")
            #expect(!received.contains("[DONE]"))
            #expect(await exited.value == 0, "\(running.stderr)")
        }
    }

    /// A second signal during the drain exits at once (status 1), without waiting for the
    /// request still in flight.
    @Test func aSecondSignalExitsAtOnce() async throws {
        try await withFixture { fx in
            let (running, llm, inFlight, proxyPort) = try await Self.drainingWithHeldRequest(fx)
            #expect(await eventually { (try? RawClient(port: proxyPort)) == nil })
            running.child.signal(SIGTERM)
            #expect(await running.exitStatus() == 1)
            #expect(running.stderr.contains("exiting now"), "\(running.stderr)")
            #expect((try? await inFlight.value)?.status != 200)
            llm.openGate()  // the fake's held answer, so that it can stop
        }
    }

    /// `contrib/switchboard.service`: `systemd-analyze verify` accepts it (with the built binary
    /// in place of the installed one), its `ExecStart` starts the gateway, its `KillSignal`
    /// stops it with status 0, and its `TimeoutStopSec` outlasts the default drain.
    @Test func theSystemdUnitVerifiesAndItsCommandStartsAndStops() async throws {
        let root = Self.binary.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let unit = try String(
            contentsOf: root.appendingPathComponent("contrib/switchboard.service"), encoding: .utf8)
        let (directory, config, _, adminPort) = try Self.served(adminKeys: ", keys: [{key: k}]")
        let local =
            unit
            .replacingOccurrences(of: "/usr/local/bin/switchboard", with: Self.binary.path)
            .replacingOccurrences(of: "/etc/switchboard/switchboard.yaml", with: config.path)
        let unitPath = directory.appendingPathComponent("switchboard.service").path
        try local.write(toFile: unitPath, atomically: true, encoding: .utf8)
        let verify = try await Spawned.finish("systemd-analyze", ["verify", unitPath])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let setting = { (name: String) in
            local.split(separator: "\n").first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
        }
        #expect(setting("KillSignal") == "SIGTERM")
        let stopSeconds = try #require(setting("TimeoutStopSec").flatMap { Int($0) })
        #expect(stopSeconds * 1000 > GatewayConfig().drainTimeoutMs)
        let command = try #require(setting("ExecStart")).split(separator: " ").map(String.init)
        #expect(command.first == Self.binary.path)
        try await withFixture { fx in
            let running = fx.own(try Running(Array(command.dropFirst()), directory: directory))
            try #require(await Self.waitForAdmin(adminPort, key: "k"))
            running.child.signal(SIGTERM)
            #expect(await running.exitStatus() == 0, "\(running.stderr)")
        }
    }
}

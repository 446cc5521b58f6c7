import Foundation
import NIOHTTP1
import SwitchboardCore
import Testing

/// The dashboard in a real headless Chromium (Playwright from PyPI driving Debian's chromium,
/// both installed by scripts/test.sh): sign-in, an instance turning unhealthy and back, a quota
/// bar moving, a failed-over request's attempts, a validation error on edit, and a viewer who
/// cannot write. Screenshots of each page are kept in `.build/dashboard-screenshots`.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"), "needs Debian's chromium"))
struct DashboardBrowserTests {
    static var screenshots: URL {
        var url = URL(fileURLWithPath: #filePath)
        while url.lastPathComponent != "Tests" { url.deleteLastPathComponent() }
        return url.deletingLastPathComponent().appendingPathComponent(".build/dashboard-screenshots")
    }

    @Test func aPersonCanSeeAndChangeWhatTheGatewayDoes() async throws {
        try await withFixture { fx in
            let f = try await fx.own(AIFixture.start())
            let failChat = Flag(false)
            let failHealth = Flag(false)
            f.a.reply { seen in
                switch seen.path {
                case "/__fail_chat": failChat.set(true)
                case "/__heal_chat": failChat.set(false)
                case "/__fail_health": failHealth.set(true)
                case "/__heal_health": failHealth.set(false)
                case "/health": return .json(status: failHealth.isOn ? 500 : 200, body: "{}")
                default:
                    return failChat.isOn
                        ? .json(status: 500, body: #"{"error":{"message":"boom"}}"#)
                        : .json(status: 200, body: FakeLLM.completion(model: "model-a"))
                }
                return .json(status: 200, body: "{}")
            }
            f.b.reply { _ in .json(status: 200, body: FakeLLM.completion(model: "model-b", usage: (30, 12))) }
            let checks =
                #","priority":1,"checks":{"active":{"http_path":"/health","healthy":{"interval":1,"successes":1},"unhealthy":{"interval":1,"http_failures":1}}}"#
            let route = """
                {"uri":"/anything","methods":["POST"],"plugins":{
                  "ai-proxy-multi":{"fallback_strategy":["http_5xx"],"instances":[
                    \(f.instance("a", f.a, model: "model-a", extra: checks)),\(f.instance("b", f.b, model: "model-b"))]},
                  "ai-rate-limiting":{"limit":100000,"time_window":3600}}}
                """
            #expect(try await f.gw.admin(.PUT, "/routes/ai", route).status == 201)
            let out = Self.screenshots
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            let result = try await Spawned.finish(
                "python3",
                [
                    Spawned.clientScript("dashboard_browser.py"), "--admin", f.gw.adminBase, "--proxy",
                    f.gw.proxyBase, "--admin-key", TestGateway.adminKey, "--viewer-key", TestGateway.viewerKey,
                    "--control", f.a.endpoint, "--out", out.path,
                ])
            #expect(result.status == 0, "\(result.stderr.suffix(3000))")
            #expect(result.stdout.contains("ok"))
            for page in ["overview", "requests", "instances", "quotas", "configuration", "viewer"] {
                #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("\(page).png").path))
            }
        }
    }
}

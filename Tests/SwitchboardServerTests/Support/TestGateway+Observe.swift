import Foundation
import SwitchboardCore

/// What a test reads back from a running gateway: Prometheus text, the control API's health
/// report, the access log.
extension TestGateway {
    func metrics() async throws -> String {
        try await HTTP.send(.GET, metricsURL).body
    }

    /// The value of the first sample of `metric` whose labels contain every `labels` pair.
    func sample(_ metric: String, _ labels: [String: String] = [:]) async throws -> Double? {
        SwitchboardServerTests.sample(try await metrics(), metric, labels)
    }

    func control(_ path: String = "/v1/healthcheck") async throws -> JSONValue {
        try await HTTP.send(.GET, controlBase + path).json
    }

    /// The first node of `instance` in `/v1/healthcheck` (`status`, `breaker`, `available`, ...).
    func healthNode(_ instance: String) async throws -> JSONValue? {
        let list = try await control().arrayValue ?? []
        return list.first { $0["instance"]?.stringValue == instance }?["nodes"]?[0]
    }

    var accessLogURL: URL { directory.appendingPathComponent("access.log") }

    /// Stops the gateway (which flushes its access log) and returns the whole log.
    func finalAccessLog() async throws -> String {
        await stop()
        return try String(contentsOf: accessLogURL, encoding: .utf8)
    }

    /// The access log's first line, once the writer thread has written it (the gateway runs on).
    func firstAccessLogLine() async throws -> String {
        var text = ""
        let written = await eventually {
            text = (try? String(contentsOf: accessLogURL, encoding: .utf8)) ?? ""
            return text.contains("\n")
        }
        guard written else { throw TimedOut() }
        return String(text.split(separator: "\n").first ?? "")
    }
}

/// The value of the first sample of `metric` in Prometheus `text` whose labels contain every
/// `labels` pair.
func sample(_ text: String, _ metric: String, _ labels: [String: String] = [:]) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(metric + "{") || line.hasPrefix(metric + " ") {
        let name = line.prefix { $0 != "{" && $0 != " " }
        guard name == metric else { continue }
        if labels.allSatisfy({ line.contains("\($0.key)=\"\($0.value)\"") }) {
            return Double(line.split(separator: " ").last ?? "")
        }
    }
    return nil
}

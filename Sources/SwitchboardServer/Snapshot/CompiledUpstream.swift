import SwitchboardCore
import Synchronization

/// An upstream (`nodes` + how to reach them) compiled for plain HTTP proxying.
public final class CompiledUpstream: Sendable {
    public struct Node: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var weight: Int

        /// `host:port`, brackets around IPv6 literals.
        public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    public enum PassHost: String, Sendable { case pass, node, rewrite }

    public let nodes: [Node]
    public let scheme: String
    public let passHost: PassHost
    public let upstreamHost: String?
    public let connectTimeout: Duration
    public let readTimeout: Duration
    private let balancer: Mutex<WeightedRoundRobin>

    public init(_ value: JSONValue) {
        let scheme = value["scheme"]?.stringValue ?? "http"
        let defaultPort = scheme == "https" ? 443 : 80
        var nodes: [Node] = []
        switch value["nodes"] {
        case .object(let map)?:
            for (key, weight) in map {
                guard let (host, port) = ConfigValidator.splitHostPort(key) else { continue }
                nodes.append(Node(host: host, port: port ?? defaultPort, weight: weight.intValue ?? 1))
            }
        case .array(let list)?:
            for item in list {
                guard let host = item["host"]?.stringValue else { continue }
                nodes.append(
                    Node(
                        host: host, port: item["port"]?.intValue ?? defaultPort, weight: item["weight"]?.intValue ?? 1))
            }
        default:
            break
        }
        self.nodes = nodes
        self.scheme = scheme
        self.passHost = PassHost(rawValue: value["pass_host"]?.stringValue ?? "pass") ?? .pass
        self.upstreamHost = value["upstream_host"]?.stringValue
        let seconds = { (name: String) in
            Saturating.milliseconds(value["timeout"]?[name]?.doubleValue ?? 60, maxSeconds: 86_400) ?? 60_000
        }
        self.connectTimeout = .milliseconds(seconds("connect"))
        self.readTimeout = .milliseconds(seconds("read"))
        let start = nodes.isEmpty ? 0 : Int.random(in: 0..<nodes.count)
        self.balancer = Mutex(WeightedRoundRobin(weights: nodes.map(\.weight), start: start))
    }

    /// The next node by weighted round robin; `nil` when the upstream has no nodes.
    public func pick() -> Node? {
        guard let index = balancer.withLock({ $0.next() }) else { return nil }
        return nodes[index]
    }
}

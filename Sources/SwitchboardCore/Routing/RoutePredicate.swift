/// Everything of a route that decides whether it matches a request, compiled from the route's
/// JSON once per configuration.
public struct RoutePredicate: Sendable {
    public enum URIPattern: Sendable, Hashable {
        case exact(String)
        /// `/v1/*` matches every path starting with `/v1/`.
        case prefix(String)
    }

    public enum HostPattern: Sendable, Hashable {
        case exact(String)
        /// `*.example.com` matches `a.example.com` and `a.b.example.com`.
        case suffix(String)

        public init(_ text: String) {
            let lower = text.lowercased()
            if lower.hasPrefix("*") {
                self = .suffix(String(lower.dropFirst()))
            } else {
                self = .exact(lower)
            }
        }

        public func matches(_ host: String) -> Bool {
            switch self {
            case .exact(let h): return h == host
            case .suffix(let s): return host.hasSuffix(s) && host.count > s.count
            }
        }
    }

    public var uris: [URIPattern]
    public var methods: Set<String>?
    public var hosts: [HostPattern]?
    public var remoteAddrs: [CIDR]?
    public var vars: Expr?
    public var priority: Int

    public init(
        uris: [URIPattern], methods: Set<String>? = nil, hosts: [HostPattern]? = nil,
        remoteAddrs: [CIDR]? = nil, vars: Expr? = nil, priority: Int = 0
    ) {
        self.uris = uris
        self.methods = methods
        self.hosts = hosts
        self.remoteAddrs = remoteAddrs
        self.vars = vars
        self.priority = priority
    }

    /// Parses a route path the way APISIX's radixtree reads it: a trailing `*` makes a prefix.
    public static func uriPattern(_ text: String) -> URIPattern {
        if text.hasSuffix("*") { return .prefix(String(text.dropLast())) }
        return .exact(text)
    }

    /// Compiles the matching fields of a validated route (or service hosts) object.
    public static func compile(route: JSONValue, serviceHosts: [String]? = nil) throws(Expr.CompileError)
        -> RoutePredicate
    {
        var uris: [URIPattern] = []
        if let uri = route["uri"]?.stringValue { uris.append(uriPattern(uri)) }
        for uri in route["uris"]?.arrayValue ?? [] {
            if let s = uri.stringValue { uris.append(uriPattern(s)) }
        }
        let methods = route["methods"]?.arrayValue.map { Set($0.compactMap(\.stringValue)) }
        var hostList: [String]? = nil
        if let host = route["host"]?.stringValue {
            hostList = [host]
        } else if let hosts = route["hosts"]?.arrayValue {
            hostList = hosts.compactMap(\.stringValue)
        } else {
            hostList = serviceHosts
        }
        var addrs: [CIDR]? = nil
        let addrValues = route["remote_addr"].map { [$0] } ?? route["remote_addrs"]?.arrayValue
        if let addrValues {
            addrs = []
            for value in addrValues {
                guard let s = value.stringValue, let cidr = CIDR(s) else {
                    throw Expr.CompileError(message: "invalid remote_addr \(value.serialized())")
                }
                addrs?.append(cidr)
            }
        }
        var vars: Expr? = nil
        if let v = route["vars"], case .array(let items) = v, !items.isEmpty {
            vars = try Expr.compile(v)
        }
        return RoutePredicate(
            uris: uris, methods: methods, hosts: hostList?.map(HostPattern.init), remoteAddrs: addrs,
            vars: vars, priority: route["priority"]?.intValue ?? 0)
    }
}

/// The parts of a request that route matching looks at.
public struct RouteRequest {
    public var path: String
    public var method: String
    /// Lower-cased, without port.
    public var host: String
    public var remoteAddress: IPAddress?

    public init(path: String, method: String, host: String, remoteAddress: IPAddress?) {
        self.path = path
        self.method = method
        self.host = host
        self.remoteAddress = remoteAddress
    }
}

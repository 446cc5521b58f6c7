/// Everything of a route that decides whether it matches a request, compiled from the route's
/// JSON once per configuration.
public struct RoutePredicate: Sendable {
    public enum URIPattern: Sendable, Hashable {
        case exact(String)
        /// `/v1/*` matches every path starting with `/v1/`.
        case prefix(String)
        /// `/users/:id/posts` or `/files/*path`: `prefix` is the literal text before the first
        /// parameter, `segments` the whole path's segments.
        case parameterized(prefix: String, segments: [PathSegment])
    }

    /// One `/`-separated segment of a parameterized route path (radixtree's semantics).
    public enum PathSegment: Sendable, Hashable {
        case literal(Substring)
        /// `:name`: one non-empty segment.
        case parameter(String)
        /// `*name`: the rest of the path, slashes included (last segment only).
        case rest(String)
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
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        var segments: [PathSegment] = []
        var prefixEnd: String.Index?
        var offset = text.startIndex
        for (i, part) in parts.enumerated() {
            if part.count > 1 && part.first == ":" {
                segments.append(.parameter(String(part.dropFirst())))
                prefixEnd = prefixEnd ?? offset
            } else if part.first == "*" && i == parts.count - 1 && (part.count > 1 || prefixEnd != nil) {
                // `*name`, or a bare `*` after parameters (`/users/:id/*`): the rest of the path.
                segments.append(.rest(String(part.dropFirst())))
                prefixEnd = prefixEnd ?? offset
            } else {
                segments.append(.literal(part))
            }
            offset = part.endIndex < text.endIndex ? text.index(after: part.endIndex) : text.endIndex
        }
        if let prefixEnd { return .parameterized(prefix: String(text[..<prefixEnd]), segments: segments) }
        if text.hasSuffix("*") { return .prefix(String(text.dropLast())) }
        return .exact(text)
    }

    /// The parameters of `path` when it matches `segments`, else `nil`.
    public static func parameters(of path: String, matching segments: [PathSegment]) -> [(
        name: String, value: String
    )]? {
        var found: [(name: String, value: String)] = []
        var rest = Substring(path)
        for (i, segment) in segments.enumerated() {
            if i > 0 {
                guard rest.first == "/" else { return nil }
                rest = rest.dropFirst()
            }
            let end = rest.firstIndex(of: "/") ?? rest.endIndex
            switch segment {
            case .literal(let text):
                guard rest[..<end] == text else { return nil }
                rest = rest[end...]
            case .parameter(let name):
                guard end > rest.startIndex else { return nil }
                found.append((name, String(rest[..<end])))
                rest = rest[end...]
            case .rest(let name):
                if !name.isEmpty { found.append((name, String(rest))) }
                rest = rest[rest.endIndex...]
            }
        }
        return rest.isEmpty ? found : nil
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

/// A parsed `override.endpoint`: `scheme://host[:port][/path][?query]`, as APISIX reads it
/// (LuaSocket `url.parse`): a URL with a path (even `/`) is used as is, without one the
/// provider's path for the protocol is used.
public struct AIEndpoint: Sendable, Equatable {
    public var scheme: String
    public var host: String
    public var port: Int
    public var path: String?
    public var query: [(String, String)]

    public static func == (a: AIEndpoint, b: AIEndpoint) -> Bool {
        a.scheme == b.scheme && a.host == b.host && a.port == b.port && a.path == b.path
            && a.query.map { "\($0.0)=\($0.1)" } == b.query.map { "\($0.0)=\($0.1)" }
    }

    public init(scheme: String, host: String, port: Int, path: String?, query: [(String, String)] = []) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.query = query
    }

    public init?(_ text: String) {
        let scheme: String
        var rest: Substring
        if text.hasPrefix("https://") {
            scheme = "https"
            rest = text.dropFirst(8)
        } else if text.hasPrefix("http://") {
            scheme = "http"
            rest = text.dropFirst(7)
        } else {
            return nil
        }
        var queryText: Substring?
        if let q = rest.firstIndex(of: "?") {
            queryText = rest[rest.index(after: q)...]
            rest = rest[..<q]
        }
        var path: String?
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        var host = rest
        var port = scheme == "https" ? 443 : 80
        if let colon = rest.firstIndex(of: ":") {
            host = rest[..<colon]
            let digits = rest[rest.index(after: colon)...]
            if !digits.isEmpty {
                guard let p = Int(digits), (1...65535).contains(p) else { return nil }
                port = p
            }
        }
        guard !host.isEmpty, !host.contains(where: { $0 == "/" || $0 == " " }) else { return nil }
        self.scheme = scheme
        self.host = String(host)
        self.port = port
        self.path = path
        self.query = (queryText ?? "").split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
    }

    /// `host[:port]` as sent in `Host` (port left out when it is the scheme's default).
    public var authority: String {
        let defaultPort = scheme == "https" ? 443 : 80
        let h = host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]" : host
        return port == defaultPort ? h : "\(h):\(port)"
    }
}

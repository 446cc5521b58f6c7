/// A request variable as named in route `vars`, balancer keys and access log formats
/// (nginx/APISIX names), parsed once when the configuration is compiled so that a request
/// only does a switch, never a string scan of the name.
public enum RequestVariable: Sendable, Hashable {
    case uri
    case requestURI
    case host
    case remoteAddr
    case remotePort
    case requestMethod
    case scheme
    case serverPort
    case queryString
    /// `arg_<name>`: a query argument.
    case arg(String)
    /// `http_<name>`: a request header, `_` standing for `-`, case-insensitive.
    case header(String)
    /// `cookie_<name>`.
    case cookie(String)
    /// `post_arg.<dot.path>` or `post_arg_<name>`: a member of the JSON (or form) request body.
    case postArg([String])
    /// Any other name: resolved by the component that owns it (e.g. `route_id`, `consumer_name`).
    case other(String)

    public init(name: String) {
        switch name {
        case "uri": self = .uri
        case "request_uri": self = .requestURI
        case "host": self = .host
        case "remote_addr": self = .remoteAddr
        case "remote_port": self = .remotePort
        case "request_method": self = .requestMethod
        case "scheme": self = .scheme
        case "server_port": self = .serverPort
        case "args", "query_string": self = .queryString
        default:
            if name.hasPrefix("arg_") {
                self = .arg(String(name.dropFirst(4)))
            } else if name.hasPrefix("http_") {
                self = .header(name.dropFirst(5).lowercased().replacingOccurrences(of: "_", with: "-"))
            } else if name.hasPrefix("cookie_") {
                self = .cookie(String(name.dropFirst(7)))
            } else if name.hasPrefix("post_arg.") {
                self = .postArg(
                    name.dropFirst(9).split(separator: ".", omittingEmptySubsequences: false).map(String.init))
            } else if name.hasPrefix("post_arg_") {
                self = .postArg([String(name.dropFirst(9))])
            } else {
                self = .other(name)
            }
        }
    }

    /// Whether resolving the variable needs the request body.
    public var needsBody: Bool {
        if case .postArg = self { return true }
        return false
    }
}

/// Resolves request variables for one request.
public protocol RequestVariableSource {
    func value(of variable: RequestVariable) -> JSONValue?
}

import Testing

@testable import SwitchboardCore

/// Variables of a request for expression tests, from plain dictionaries.
struct FakeVariables: RequestVariableSource {
    var args: [String: String] = [:]
    var headers: [String: String] = [:]
    var body: JSONValue?
    var uri = "/"

    func value(of variable: RequestVariable) -> JSONValue? {
        switch variable {
        case .uri: return .string(uri)
        case .arg(let name): return args[name].map { .string($0) }
        case .header(let name): return headers[name].map { .string($0) }
        case .postArg(let path): return body?.value(atPath: path.joined(separator: "."))
        case .remoteAddr: return "10.0.0.5"
        default: return nil
        }
    }
}

@Suite struct RouteMatcherTests {
    static let routes: [String] = [
        #"{"id":"exact","uri":"/v1/chat/completions","plugins":{}}"#,
        #"{"id":"prefix-v1","uri":"/v1/*","plugins":{}}"#,
        #"{"id":"prefix-v1-chat","uri":"/v1/chat/*","plugins":{}}"#,
        #"{"id":"root","uri":"/*","plugins":{}}"#,
        #"{"id":"post-only","uri":"/m","methods":["POST"],"plugins":{}}"#,
        #"{"id":"get-only","uri":"/m","methods":["GET"],"plugins":{}}"#,
        #"{"id":"low","uri":"/p","priority":1,"plugins":{}}"#,
        #"{"id":"high","uri":"/p","priority":10,"vars":[["arg_v","==","1"]],"plugins":{}}"#,
        #"{"id":"host-exact","uri":"/h","host":"api.example.com","plugins":{}}"#,
        #"{"id":"host-wild","uri":"/h","hosts":["*.example.org"],"plugins":{}}"#,
        #"{"id":"gpt4o","uri":"/ai","vars":[["post_arg.model","==","gpt-4o"]],"plugins":{}}"#,
        #"{"id":"claude","uri":"/ai","vars":[["post_arg.model","~~","^claude-"]],"plugins":{}}"#,
        #"{"id":"nested","uri":"/ai","vars":[["post_arg.meta.tier","==","gold"]],"plugins":{}}"#,
        #"{"id":"lan","uri":"/lan","remote_addrs":["10.0.0.0/8"],"plugins":{}}"#,
        #"{"id":"or","uri":"/or","vars":["OR",["arg_a","==","1"],["http_x-b","==","2"]],"plugins":{}}"#,
    ]

    static let matcher: RouteMatcher<String> = {
        let list = routes.map { text -> (RoutePredicate, String) in
            let value = try! JSONParser.parse(text)
            return (try! RoutePredicate.compile(route: value), value["id"]!.stringValue!)
        }
        return RouteMatcher(list)
    }()

    struct Case: Sendable, CustomTestStringConvertible {
        var path: String
        var method = "GET"
        var host = "localhost"
        var remote = "127.0.0.1"
        var args: [String: String] = [:]
        var headers: [String: String] = [:]
        var body: String?
        var expected: String?
        var testDescription: String { "\(method) \(host)\(path) → \(expected ?? "none")" }
    }

    @Test(arguments: [
        Case(path: "/v1/chat/completions", expected: "exact"),
        Case(path: "/v1/chat/other", expected: "prefix-v1-chat"),
        Case(path: "/v1/embeddings", expected: "prefix-v1"),
        Case(path: "/v1", expected: "root"),
        Case(path: "/anything", expected: "root"),
        Case(path: "/m", method: "POST", expected: "post-only"),
        Case(path: "/m", method: "GET", expected: "get-only"),
        Case(path: "/m", method: "DELETE", expected: "root"),
        Case(path: "/p", args: ["v": "1"], expected: "high"),
        Case(path: "/p", args: ["v": "2"], expected: "low"),
        Case(path: "/h", host: "api.example.com", expected: "host-exact"),
        Case(path: "/h", host: "a.b.example.org", expected: "host-wild"),
        Case(path: "/h", host: "example.org", expected: "root"),
        Case(path: "/ai", body: #"{"model":"gpt-4o"}"#, expected: "gpt4o"),
        Case(path: "/ai", body: #"{"model":"claude-3-5"}"#, expected: "claude"),
        Case(path: "/ai", body: #"{"model":"x","meta":{"tier":"gold"}}"#, expected: "nested"),
        Case(path: "/ai", body: #"{"model":"other"}"#, expected: "root"),
        Case(path: "/lan", remote: "10.1.2.3", expected: "lan"),
        Case(path: "/lan", remote: "192.168.1.1", expected: "root"),
        Case(path: "/or", headers: ["x-b": "2"], expected: "or"),
        Case(path: "/or", args: ["a": "1"], expected: "or"),
        Case(path: "/or", args: ["a": "2"], expected: "root"),
    ])
    func matches(_ c: Case) throws {
        let request = RouteRequest(path: c.path, method: c.method, host: c.host, remoteAddress: IPAddress(c.remote))
        let vars = FakeVariables(args: c.args, headers: c.headers, body: try c.body.map { try JSONParser.parse($0) })
        #expect(Self.matcher.match(request, variables: vars) == c.expected)
    }

    @Test func nothingMatchesWithoutACatchAll() throws {
        let matcher = RouteMatcher([(try RoutePredicate.compile(route: ["uri": "/a", "plugins": [:]]), "a")])
        let request = RouteRequest(path: "/b", method: "GET", host: "", remoteAddress: nil)
        #expect(matcher.match(request, variables: FakeVariables()) == nil)
        #expect(!matcher.needsBody)
        #expect(Self.matcher.needsBody)
    }

    @Test func samePriorityKeepsConfigurationOrder() throws {
        let a = try RoutePredicate.compile(route: ["uri": "/x", "plugins": [:]])
        let matcher = RouteMatcher([(a, "first"), (a, "second")])
        let request = RouteRequest(path: "/x", method: "GET", host: "", remoteAddress: nil)
        #expect(matcher.match(request, variables: FakeVariables()) == "first")
    }
}

@Suite struct ExprTests {
    func eval(_ rule: String, _ vars: FakeVariables = FakeVariables()) throws -> Bool {
        try Expr.compile(try JSONParser.parse(rule)).evaluate(vars)
    }

    @Test func operators() throws {
        let v = FakeVariables(
            args: ["n": "15", "s": "Hello"], body: try JSONParser.parse(#"{"tags":["a","b"],"n":3,"stream":true}"#))
        #expect(try eval(#"[["arg_n", ">", 10]]"#, v))
        #expect(try eval(#"[["arg_n", "<=", 15]]"#, v))
        #expect(try !eval(#"[["arg_n", "<", 15]]"#, v))
        #expect(try eval(#"[["arg_n", "==", 15]]"#, v))
        #expect(try eval(#"[["arg_s", "~=", "x"]]"#, v))
        #expect(try eval(#"[["arg_s", "~*", "^hel"]]"#, v))
        #expect(try !eval(#"[["arg_s", "~~", "^hel"]]"#, v))
        #expect(try eval(#"[["arg_s", "in", ["Hello", "x"]]]"#, v))
        #expect(try eval(#"[["post_arg.tags", "has", "b"]]"#, v))
        #expect(try eval(#"[["post_arg.n", ">=", 3]]"#, v))
        #expect(try eval(#"[["post_arg.stream", "==", true]]"#, v))
        #expect(try eval(#"[["arg_s", "!", "==", "x"]]"#, v))
        #expect(try eval(#"[["remote_addr", "ipmatch", ["10.0.0.0/24"]]]"#, v))
        #expect(try eval(#"["!AND", ["arg_s", "==", "Hello"], ["arg_n", "==", "1"]]"#, v))
        #expect(try !eval(#"[["arg_missing", "==", "x"]]"#, v))
        #expect(try eval(#"[["arg_missing", "~=", "x"]]"#, v))
    }

    @Test func rejectsBadRules() {
        #expect(throws: Expr.CompileError.self) { try Expr.compile(try! JSONParser.parse(#"[["a", "===", 1]]"#)) }
        #expect(throws: Expr.CompileError.self) { try Expr.compile(try! JSONParser.parse(#"[["a", "~~", "("]]"#)) }
        #expect(throws: Expr.CompileError.self) { try Expr.compile(try! JSONParser.parse(#""x""#)) }
    }

    @Test func cidrs() {
        #expect(CIDR("192.168.0.0/16")!.contains(IPAddress("192.168.3.4")!))
        #expect(!CIDR("192.168.0.0/16")!.contains(IPAddress("192.169.0.1")!))
        #expect(CIDR("::1")!.contains(IPAddress("::1")!))
        #expect(CIDR("2001:db8::/32")!.contains(IPAddress("2001:db8::5")!))
        #expect(CIDR("10.0.0.1/33") == nil)
        #expect(CIDR("nonsense") == nil)
    }
}

/// radixtree's path parameters: `:name` is one non-empty segment, `*name` (or a bare `*` after
/// parameters) the rest of the path.
@Suite struct PathParameterTests {
    func parameters(_ pattern: String, _ path: String) -> [String]? {
        guard case .parameterized(_, let segments) = RoutePredicate.uriPattern(pattern) else { return nil }
        return RoutePredicate.parameters(of: path, matching: segments)?.map { "\($0.name)=\($0.value)" }
    }

    @Test func patternsAndTheirPrefixes() {
        #expect(RoutePredicate.uriPattern("/v1/*") == .prefix("/v1/"))
        #expect(RoutePredicate.uriPattern("/models:list") == .exact("/models:list"), "a colon inside a segment")
        guard case .parameterized(let prefix, _) = RoutePredicate.uriPattern("/users/:id/posts") else {
            Issue.record("not parameterized")
            return
        }
        #expect(prefix == "/users/")
    }

    @Test(
        arguments: [
            ("/users/:id", "/users/42", ["id=42"]),
            ("/users/:id", "/users/", nil),
            ("/users/:id", "/users/42/", nil),
            ("/users/:id/posts/:post", "/users/7/posts/9", ["id=7", "post=9"]),
            ("/files/*path", "/files/a/b/c.txt", ["path=a/b/c.txt"]),
            ("/files/*path", "/files/", ["path="]),
            ("/users/:id/*", "/users/1/profile/photo", ["id=1"]),
            ("/users/:id/*", "/users/1", nil),
        ] as [(String, String, [String]?)])
    func matching(pattern: String, path: String, expected: [String]?) {
        #expect(parameters(pattern, path) == expected)
    }
}

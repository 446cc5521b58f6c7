/// Finds the route for a request like APISIX's radixtree router: an exact path beats a prefix,
/// a longer prefix beats a shorter one, and among routes on the same path the higher `priority`
/// wins (ties: the order routes were given). A candidate whose method, host, remote address or
/// `vars` do not hold is skipped and the search goes on.
///
/// Built once per configuration; a lookup is one dictionary probe for the exact path plus one per
/// distinct prefix length.
public struct RouteMatcher<Payload: Sendable>: Sendable {
    struct Entry: Sendable {
        var predicate: RoutePredicate
        var payload: Payload
        var order: Int
    }

    /// A route reached through a prefix: plain (`/v1/*`) or with parameters to check.
    struct Candidate: Sendable {
        var entry: Int
        var segments: [RoutePredicate.PathSegment]?
    }

    private var entries: [Entry] = []
    private var exact: [String: [Int]] = [:]
    private var prefixes: [String: [Candidate]] = [:]
    private var prefixLengths: [Int] = []
    /// Whether any route's `vars` read the body, so the caller knows to read it before matching.
    public private(set) var needsBody = false

    public init(_ routes: [(RoutePredicate, Payload)]) {
        for (order, (predicate, payload)) in routes.enumerated() {
            let index = entries.count
            entries.append(Entry(predicate: predicate, payload: payload, order: order))
            if predicate.vars?.needsBody == true { needsBody = true }
            for uri in Set(predicate.uris) {
                switch uri {
                case .exact(let path): exact[path, default: []].append(index)
                case .prefix(let path): prefixes[path, default: []].append(Candidate(entry: index, segments: nil))
                case .parameterized(let prefix, let segments):
                    prefixes[prefix, default: []].append(Candidate(entry: index, segments: segments))
                }
            }
        }
        let sortByPriority: ([Int]) -> [Int] = { [entries] list in
            list.sorted {
                let a = entries[$0]
                let b = entries[$1]
                if a.predicate.priority != b.predicate.priority { return a.predicate.priority > b.predicate.priority }
                return a.order < b.order
            }
        }
        exact = exact.mapValues(sortByPriority)
        prefixes = prefixes.mapValues { [entries] list in
            list.sorted {
                let a = entries[$0.entry]
                let b = entries[$1.entry]
                if a.predicate.priority != b.predicate.priority { return a.predicate.priority > b.predicate.priority }
                return a.order < b.order
            }
        }
        prefixLengths = Set(prefixes.keys.map(\.utf8.count)).sorted(by: >)
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// The first matching route's payload.
    public func match(_ request: RouteRequest, variables: some RequestVariableSource) -> Payload? {
        matchWithParameters(request, variables: variables)?.0
    }

    /// The first matching route's payload, with the values of its path's parameters.
    public func matchWithParameters(_ request: RouteRequest, variables: some RequestVariableSource) -> (
        Payload, [(name: String, value: String)]
    )? {
        if let list = exact[request.path], let found = firstMatching(list, request, variables) {
            return (found, [])
        }
        let utf8 = request.path.utf8
        for length in prefixLengths where length <= utf8.count {
            let prefix = String(Substring(utf8.prefix(length)))
            guard let list = prefixes[prefix] else { continue }
            for candidate in list {
                var parameters: [(name: String, value: String)] = []
                if let segments = candidate.segments {
                    guard let found = RoutePredicate.parameters(of: request.path, matching: segments) else { continue }
                    parameters = found
                }
                let entry = entries[candidate.entry]
                if Self.holds(entry.predicate, request, variables) { return (entry.payload, parameters) }
            }
        }
        return nil
    }

    /// Whether a route that could match `request` — path, method, host and address hold —
    /// reads the body in its `vars`: only then is the body read before matching.
    public func candidatesNeedBody(_ request: RouteRequest) -> Bool {
        guard needsBody else { return false }
        let needs = { (index: Int) -> Bool in
            let p = entries[index].predicate
            return p.vars?.needsBody == true && Self.holdsBesidesVars(p, request)
        }
        if let list = exact[request.path], list.contains(where: needs) { return true }
        let utf8 = request.path.utf8
        for length in prefixLengths where length <= utf8.count {
            if let list = prefixes[String(Substring(utf8.prefix(length)))], list.contains(where: { needs($0.entry) }) {
                return true
            }
        }
        return false
    }

    private func firstMatching(_ list: [Int], _ request: RouteRequest, _ variables: some RequestVariableSource)
        -> Payload?
    {
        for index in list {
            let entry = entries[index]
            if Self.holds(entry.predicate, request, variables) { return entry.payload }
        }
        return nil
    }

    private static func holds(_ p: RoutePredicate, _ request: RouteRequest, _ variables: some RequestVariableSource)
        -> Bool
    {
        guard holdsBesidesVars(p, request) else { return false }
        if let vars = p.vars, !vars.evaluate(variables) { return false }
        return true
    }

    /// Method, host and remote address: everything but `vars`.
    private static func holdsBesidesVars(_ p: RoutePredicate, _ request: RouteRequest) -> Bool {
        if let methods = p.methods, !methods.contains(request.method) { return false }
        if let hosts = p.hosts, !hosts.contains(where: { $0.matches(request.host) }) { return false }
        if let addrs = p.remoteAddrs {
            guard let address = request.remoteAddress, addrs.contains(where: { $0.contains(address) }) else {
                return false
            }
        }
        return true
    }
}

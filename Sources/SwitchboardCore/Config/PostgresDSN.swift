/// `postgres://user:password@host:port/database?sslmode=disable|require|verify-full`: where a
/// cluster keeps its configuration. Parsed once at startup; ``redacted`` is the only form that
/// is ever logged or shown in an error, so the password never leaves the process.
public struct PostgresDSN: Sendable, Equatable, CustomStringConvertible {
    public enum SSLMode: String, Sendable, Equatable {
        /// Plain TCP (loopback, or a private network the operator trusts).
        case disable
        /// TLS without checking the server's certificate (libpq's `require`).
        case require
        /// TLS, the certificate checked against the system's roots and the host name.
        case verifyFull = "verify-full"
    }

    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: SSLMode

    /// `postgres://user:***@host:port/database?sslmode=...`
    public var redacted: String {
        let secret = password == nil ? "" : ":***"
        return "postgres://\(user)\(secret)@\(host):\(port)/\(database)?sslmode=\(sslMode.rawValue)"
    }

    public var description: String { redacted }

    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Parses `text`; the error names the part that is wrong, never the password.
    public init(_ text: String) throws(Invalid) {
        let schemes = ["postgres://", "postgresql://"]
        guard let scheme = schemes.first(where: { text.hasPrefix($0) }) else {
            throw Invalid(description: "a PostgreSQL store starts with postgres://")
        }
        var rest = Substring(text.dropFirst(scheme.count))
        var query = Substring("")
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        guard let at = rest.lastIndex(of: "@") else {
            throw Invalid(
                description:
                    "postgres:// store needs user@host (e.g. postgres://switchboard@127.0.0.1:5432/switchboard)")
        }
        let userInfo = rest[..<at]
        let location = rest[rest.index(after: at)...]
        if let colon = userInfo.firstIndex(of: ":") {
            user = Self.percentDecoded(userInfo[..<colon])
            password = Self.percentDecoded(userInfo[userInfo.index(after: colon)...])
        } else {
            user = Self.percentDecoded(userInfo)
            password = nil
        }
        guard !user.isEmpty else { throw Invalid(description: "postgres:// store has no user name") }
        let hostPort: Substring
        if let slash = location.firstIndex(of: "/") {
            hostPort = location[..<slash]
            database = Self.percentDecoded(location[location.index(after: slash)...])
        } else {
            hostPort = location
            database = ""
        }
        if database.isEmpty { database = user }
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            port = try Self.port(after.hasPrefix(":") ? after.dropFirst() : "")
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            port = try Self.port(hostPort[hostPort.index(after: colon)...])
        } else {
            host = String(hostPort)
            port = 5432
        }
        guard !host.isEmpty else { throw Invalid(description: "postgres:// store has no host") }
        sslMode = .disable
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "sslmode":
                // libpq's `prefer`/`allow` pick plain TCP silently when TLS fails; not offered.
                guard let mode = SSLMode(rawValue: String(parts[1])) else {
                    throw Invalid(
                        description: "postgres:// store: sslmode \"\(parts[1])\" is not disable, require or verify-full"
                    )
                }
                sslMode = mode
            default:
                throw Invalid(description: "postgres:// store: unknown parameter \"\(parts[0])\" (only sslmode)")
            }
        }
    }

    private static func port(_ text: Substring) throws(Invalid) -> Int {
        if text.isEmpty { return 5432 }
        guard let port = Int(text), (1...65535).contains(port) else {
            throw Invalid(description: "postgres:// store: port \"\(text)\" is not a number from 1 to 65535")
        }
        return port
    }

    /// `%40` → `@` (a password with reserved characters is percent-encoded in a URL).
    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            let pair = [iterator.next(), iterator.next()].compactMap { $0 }
            if pair.count == 2, let value = UInt8(String(decoding: pair, as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes += [byte] + pair  // not an escape: kept as written
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

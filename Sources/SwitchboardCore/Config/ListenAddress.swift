import Foundation

/// A `host:port` to listen on: `0.0.0.0:9080`, `127.0.0.1:0`, `[::1]:9180`, `:9080`, `9080`.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// TLS (with HTTP/2 by ALPN) on this listener, certificates from the `ssls` resource.
    public var tls = false

    public init(host: String, port: Int, tls: Bool = false) {
        self.host = host
        self.port = port
        self.tls = tls
    }

    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var host = "0.0.0.0"
        var portText = Substring(trimmed)
        if trimmed.hasPrefix("[") {
            guard let close = trimmed.firstIndex(of: "]") else { return nil }
            host = String(trimmed[trimmed.index(after: trimmed.startIndex)..<close])
            let rest = trimmed[trimmed.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else if let colon = trimmed.lastIndex(of: ":") {
            let h = trimmed[..<colon]
            if !h.isEmpty { host = String(h) }
            portText = trimmed[trimmed.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port) else { return nil }
        guard host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" }) else {
            return nil
        }
        if !host.contains(":") && host.first?.isNumber == true && IPAddress(host) == nil { return nil }
        if host.contains(":") && IPAddress(host) == nil { return nil }
        self.host = host
        self.port = port
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Whether only this machine can reach it.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

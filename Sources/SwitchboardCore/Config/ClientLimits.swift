/// What the proxy listeners allow a client before refusing it: a hostile or broken client
/// (slowloris, endless headers, a stalled upload, a connection flood) costs a bounded amount of
/// memory and time, and the clients already served are not hurt.
public struct ClientLimits: Sendable, Equatable {
    /// `proxy.max_connections`: open client connections over all proxy listeners; a connection
    /// over it is answered 503 and closed at once.
    public var maxConnections = 10_000
    /// `proxy.header_timeout_ms`: from a request's first byte to the end of its head
    /// (nginx's `client_header_timeout`); then the connection is closed.
    public var headerTimeoutMs = 10_000
    /// `proxy.body_timeout_ms`: the longest wait for the next body bytes while the gateway is
    /// reading the body (nginx's `client_body_timeout`); then the connection is closed.
    public var bodyTimeoutMs = 60_000
    /// `proxy.max_header_bytes`: the request line and headers together, and any one field
    /// (→ 431).
    public var maxHeaderBytes = 32 * 1024
    /// `proxy.max_headers`: header fields per request (→ 431).
    public var maxHeaders = 100

    public init() {}
}
